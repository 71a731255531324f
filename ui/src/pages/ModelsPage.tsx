import { FormEvent, useEffect, useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { searchModels, type RegisteredModel } from "../api/registry";
import { ErrorBox, Loading } from "../components/Status";
import { formatTime } from "../components/format";
import { paths } from "../routes";
import { useLatest } from "../api/latest";

/** Registered models, searched by name. URL: /models?q=NAME */
export function ModelsPage() {
  const [params, setParams] = useSearchParams();
  const search = params.get("q") ?? "";
  const [text, setText] = useState(search);
  const [models, setModels] = useState<RegisteredModel[] | null>(null);
  const [error, setError] = useState<unknown>(null);

  const latest = useLatest();
  useEffect(() => {
    setError(null);
    const t = search.trim();
    latest(searchModels(t ? `name LIKE '%${t.replace(/'/g, "''")}%'` : undefined))
      .then((r) => setModels(r.registered_models))
      .catch(setError);
  }, [search, latest]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setParams(text.trim() ? { q: text.trim() } : {});
  };

  return (
    <section aria-labelledby="models-title">
      <h1 id="models-title">Registered models</h1>
      <form className="toolbar" role="search" onSubmit={submit}>
        <label>
          Search models
          <input value={text} onChange={(e) => setText(e.target.value)} placeholder="name contains…" />
        </label>
        <button type="submit">Search</button>
      </form>
      <ErrorBox error={error} />
      {models === null ? (
        <Loading what="models" />
      ) : models.length === 0 ? (
        <p className="muted">No registered model{search ? ` matches “${search}”` : ""}.</p>
      ) : (
        <table className="grid experiments" aria-label="Registered models">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Latest versions</th>
              <th scope="col">Aliases</th>
              <th scope="col">Tags</th>
              <th scope="col">Updated</th>
            </tr>
          </thead>
          <tbody>
            {models.map((m) => (
              <tr key={m.name}>
                <td>
                  <Link to={paths.model(m.name)}>{m.name}</Link>
                </td>
                <td>
                  {m.latest_versions.map((v) => (
                    <span key={v.version} className="badge">
                      v{v.version} {v.current_stage}
                    </span>
                  ))}
                </td>
                <td>
                  {Object.entries(m.aliases).map(([a, v]) => (
                    <span key={a} className="badge">
                      @{a} → v{v}
                    </span>
                  ))}
                </td>
                <td>
                  {Object.entries(m.tags).map(([k, v]) => (
                    <span key={k} className="badge">
                      {k}={v}
                    </span>
                  ))}
                </td>
                <td>{formatTime(m.last_updated_timestamp)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
