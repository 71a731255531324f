import { useEffect, useMemo, useState } from "react";
import { Link, useParams, useSearchParams } from "react-router-dom";
import { get } from "../api/client";
import { getVersion, type Version } from "../api/registry";
import type { Run } from "../api/types";
import { ErrorBox, Loading } from "../components/Status";
import { formatValue } from "../components/format";
import { versionSignature, type Signature } from "../registry/signature";
import { paths } from "../routes";

interface Column {
  version: Version;
  run: Run | null;
  signature: Signature | null;
}

/** Two or more versions of a model side by side: the params and metrics of their source
 * runs and their signatures, rows that differ highlighted.
 * URL: /models/NAME/compare?versions=1,2 */
export function ModelComparePage() {
  const { name = "" } = useParams();
  const [params] = useSearchParams();
  const wanted = useMemo(() => (params.get("versions") ?? "").split(",").filter(Boolean), [params]);
  const [columns, setColumns] = useState<Column[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    Promise.all(
      wanted.map(async (n) => {
        const version = await getVersion(name, n);
        const [run, signature] = await Promise.all([
          version.run_id ? get<Run>(`/runs/${version.run_id}`).catch(() => null) : Promise.resolve(null),
          versionSignature(version).catch(() => null),
        ]);
        return { version, run, signature };
      }),
    )
      .then(setColumns)
      .catch(setError);
  }, [name, wanted]);
  if (error) return <ErrorBox error={error} />;
  if (wanted.length < 2) return <p className="error" role="alert">Name two or more versions to compare: ?versions=1,2</p>;
  if (!columns) return <Loading what="versions" />;
  const keys = (pick: (r: Run) => Record<string, unknown>) =>
    [...new Set(columns.flatMap((c) => (c.run ? Object.keys(pick(c.run)) : [])))].sort();
  const rows: [string, string[]][] = [
    ["stage", columns.map((c) => c.version.current_stage)],
    ["aliases", columns.map((c) => c.version.aliases.map((a) => `@${a}`).join(" "))],
    ...keys((r) => r.data.params).map((k) => [`params.${k}`, columns.map((c) => c.run?.data.params[k] ?? "")] as [string, string[]]),
    ...keys((r) => r.data.metrics).map(
      (k) => [`metrics.${k}`, columns.map((c) => formatValue(c.run?.data.metrics[k]))] as [string, string[]],
    ),
    ["signature inputs", columns.map((c) => c.signature?.inputs ?? "")],
    ["signature outputs", columns.map((c) => c.signature?.outputs ?? "")],
  ];
  return (
    <section aria-labelledby="vcompare-title">
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to={paths.models()}>Models</Link> / <Link to={paths.model(name)}>{name}</Link> / <span>compare</span>
      </nav>
      <h1 id="vcompare-title">
        Compare {columns.length} versions of {name}
      </h1>
      <div className="scroll-x">
        <table className="grid compare" aria-label="Versions compared">
          <thead>
            <tr>
              <th scope="col">Key</th>
              {columns.map((c) => (
                <th key={c.version.version} scope="col">
                  <Link to={paths.modelVersion(name, c.version.version)}>Version {c.version.version}</Link>
                  {c.run && (
                    <>
                      {" "}
                      (<Link to={paths.run(c.run.info.run_id)}>{c.run.info.run_name ?? c.run.info.run_id}</Link>)
                    </>
                  )}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map(([k, values]) => {
              const differs = new Set(values).size > 1;
              return (
                <tr key={k} className={differs ? "differs" : undefined} aria-label={k}>
                  <th scope="row">
                    {k}
                    {differs && <span className="sr-only"> (differs)</span>}
                  </th>
                  {values.map((v, i) => (
                    <td key={i}>{v}</td>
                  ))}
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </section>
  );
}
