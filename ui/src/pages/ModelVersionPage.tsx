import { useEffect, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { getVersion, versionBundles, type Bundle, type Version } from "../api/registry";
import { ErrorBox, Loading, StatusBadge } from "../components/Status";
import { formatBytes, formatTime } from "../components/format";
import { versionSignature, type Signature } from "../registry/signature";
import { paths } from "../routes";

/** One model version: stage, aliases, tags, description, source run, signature, and its
 * bundles with their parity results. URL: /models/NAME/versions/N */
export function ModelVersionPage() {
  const { name = "", version = "" } = useParams();
  const [v, setV] = useState<Version | null>(null);
  const [bundles, setBundles] = useState<Bundle[] | null>(null);
  const [signature, setSignature] = useState<Signature | null | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    getVersion(name, version)
      .then((found) => {
        setV(found);
        versionSignature(found).then(setSignature, () => setSignature(null));
      })
      .catch(setError);
    versionBundles(name, version).then(setBundles).catch(setError);
  }, [name, version]);
  if (error) return <ErrorBox error={error} />;
  if (!v) return <Loading what="version" />;
  return (
    <article aria-labelledby="version-title">
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to={paths.models()}>Models</Link> / <Link to={paths.model(name)}>{name}</Link> / <span>version {version}</span>
      </nav>
      <h1 id="version-title">
        {name} version {v.version} <StatusBadge status={v.status} />
      </h1>
      <dl className="facts">
        <dt>Stage</dt>
        <dd>{v.current_stage}</dd>
        <dt>Aliases</dt>
        <dd>{v.aliases.map((a) => <span key={a} className="badge">@{a}</span>)}</dd>
        <dt>Description</dt>
        <dd>{v.description || <span className="muted">none</span>}</dd>
        <dt>Tags</dt>
        <dd>
          {Object.entries(v.tags).map(([k, t]) => (
            <span key={k} className="badge">
              {k}={t}
            </span>
          ))}
        </dd>
        <dt>Source run</dt>
        <dd>{v.run_id ? <Link to={paths.run(v.run_id)}>{v.run_id}</Link> : <span className="muted">none</span>}</dd>
        <dt>Source</dt>
        <dd className="mono">{v.source}</dd>
        <dt>Registered</dt>
        <dd>
          {formatTime(v.creation_timestamp)} by {v.user_id}
        </dd>
      </dl>
      <h2>Signature</h2>
      {signature === undefined ? (
        <Loading what="signature" />
      ) : signature === null ? (
        <p className="muted">No signature.</p>
      ) : (
        <dl className="facts" aria-label="Signature">
          <dt>Inputs</dt>
          <dd className="mono">{signature.inputs || "none"}</dd>
          <dt>Outputs</dt>
          <dd className="mono">{signature.outputs || "none"}</dd>
        </dl>
      )}
      <h2>Bundles</h2>
      {bundles === null ? (
        <Loading what="bundles" />
      ) : bundles.length === 0 ? (
        <p className="muted">No bundle was built from this version (ledgerflow bundle build models:/{name}/{version}).</p>
      ) : (
        <table className="grid" aria-label="Bundles">
          <thead>
            <tr>
              <th scope="col">Target</th>
              <th scope="col">Status</th>
              <th scope="col">Parity</th>
              <th scope="col">Max abs diff</th>
              <th scope="col">Tolerance</th>
              <th scope="col">Runtime</th>
              <th scope="col">Size</th>
              <th scope="col">Built</th>
              <th scope="col">Id</th>
            </tr>
          </thead>
          <tbody>
            {bundles.map((b) => {
              const p = b.manifest.parity;
              return (
                <tr key={b.id} aria-label={`Bundle ${b.target}`}>
                  <td>{b.target}</td>
                  <td>
                    <StatusBadge status={b.status} />
                  </td>
                  <td>{p ? (p.passed ? `passed on ${p.inputs} inputs` : "failed") : b.reason ?? ""}</td>
                  <td>{b.max_abs_diff ?? ""}</td>
                  <td>{p ? `rtol ${p.rtol}, atol ${p.atol}` : ""}</td>
                  <td>{b.runtime ?? ""}</td>
                  <td>{formatBytes(b.size_bytes)}</td>
                  <td>{formatTime(b.creation_timestamp)}</td>
                  <td className="mono">{b.id}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </article>
  );
}
