import { useCallback, useEffect, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { lacking, useMyLevel } from "../api/permissions";
import { getModel, modelVersions, type RegisteredModel, type Version } from "../api/registry";
import { ErrorBox, Loading } from "../components/Status";
import { formatTime } from "../components/format";
import { AliasBadge, AliasForm } from "../registry/AliasForm";
import { paths } from "../routes";

/** One registered model: description, tags, aliases, and its versions with their aliases,
 * stages, tags and source runs; set or remove aliases; pick versions to compare.
 * URL: /models/NAME */
export function ModelPage() {
  const { name = "" } = useParams();
  const [model, setModel] = useState<RegisteredModel | null>(null);
  const [versions, setVersions] = useState<Version[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [refused, setRefused] = useState<string | null>(null);
  const [chosen, setChosen] = useState<number[]>([]);
  const aliasesRefused = lacking(useMyLevel("model", name), "MANAGE", "setting or removing its aliases", `model ${name}`);
  const navigate = useNavigate();

  const load = useCallback(() => {
    Promise.all([getModel(name), modelVersions(name)])
      .then(([m, vs]) => {
        setModel(m);
        setVersions(vs);
      })
      .catch(setError);
  }, [name]);
  useEffect(load, [load]);

  if (error) return <ErrorBox error={error} />;
  if (!model || !versions) return <Loading what="model" />;
  const toggle = (v: number) => setChosen((c) => (c.includes(v) ? c.filter((x) => x !== v) : [...c, v].sort((a, b) => a - b)));
  return (
    <article aria-labelledby="model-title">
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to={paths.models()}>Models</Link> / <span>{name}</span>
      </nav>
      <h1 id="model-title">Model {name}</h1>
      <p>{model.description || <span className="muted">No description.</span>}</p>
      <dl className="facts">
        <dt>Tags</dt>
        <dd>
          {Object.entries(model.tags).map(([k, v]) => (
            <span key={k} className="badge">
              {k}={v}
            </span>
          ))}
        </dd>
        <dt>Created</dt>
        <dd>{formatTime(model.creation_timestamp)}</dd>
        <dt>Updated</dt>
        <dd>{formatTime(model.last_updated_timestamp)}</dd>
      </dl>
      <h2>Versions</h2>
      {refused && (
        <p role="alert" className="error">
          {refused}
        </p>
      )}
      <div className="toolbar">
        <button type="button" disabled={chosen.length < 2} onClick={() => navigate(paths.modelCompare(name, chosen))}>
          Compare {chosen.length} selected versions
        </button>
      </div>
      <table className="grid experiments" aria-label="Versions">
        <thead>
          <tr>
            <th scope="col">
              <span className="sr-only">Select</span>
            </th>
            <th scope="col">Version</th>
            <th scope="col">Aliases</th>
            <th scope="col">Stage</th>
            <th scope="col">Status</th>
            <th scope="col">Tags</th>
            <th scope="col">Source run</th>
            <th scope="col">Registered</th>
          </tr>
        </thead>
        <tbody>
          {versions.map((v) => (
            <tr key={v.version} aria-label={`Version ${v.version}`}>
              <td>
                <input type="checkbox" aria-label={`Select version ${v.version}`} checked={chosen.includes(v.version)} onChange={() => toggle(v.version)} />
              </td>
              <th scope="row">
                <Link to={paths.modelVersion(name, v.version)}>Version {v.version}</Link>
              </th>
              <td>
                {v.aliases.map((a) => (
                  <AliasBadge key={a} name={name} alias={a} onDone={load} onError={setRefused} refused={aliasesRefused} />
                ))}
              </td>
              <td>{v.current_stage}</td>
              <td>{v.status}</td>
              <td>
                {Object.entries(v.tags).map(([k, t]) => (
                  <span key={k} className="badge">
                    {k}={t}
                  </span>
                ))}
              </td>
              <td>{v.run_id ? <Link to={paths.run(v.run_id)}>{v.run_id.slice(0, 12)}</Link> : <span className="muted">{v.source}</span>}</td>
              <td>{formatTime(v.creation_timestamp)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Aliases</h2>
      <AliasForm name={name} versions={versions.map((v) => v.version)} onDone={() => { setRefused(null); load(); }} refused={aliasesRefused} />
    </article>
  );
}
