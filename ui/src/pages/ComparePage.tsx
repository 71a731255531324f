import { useEffect, useMemo, useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { get } from "../api/client";
import type { Run } from "../api/types";
import { MetricCharts } from "../charts/MetricCharts";
import { ErrorBox, Loading } from "../components/Status";
import { formatValue } from "../components/format";
import { paths } from "../routes";

/** Several runs side by side: overlaid metric charts and their params and metrics, the
 * rows that differ marked. URL: /compare?runs=ID,ID,… */
export function ComparePage() {
  const [params] = useSearchParams();
  const ids = useMemo(() => (params.get("runs") ?? "").split(",").filter(Boolean), [params]);
  const [runs, setRuns] = useState<Run[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    Promise.all(ids.map((id) => get<Run>(`/runs/${id}`)))
      .then(setRuns)
      .catch(setError);
  }, [ids]);
  if (error) return <ErrorBox error={error} />;
  if (!runs) return <Loading what="runs" />;
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r.data.metrics)))].sort();
  const rows: [string, string[]][] = [
    ...[...new Set(runs.flatMap((r) => Object.keys(r.data.params)))].sort().map(
      (k) => [`params.${k}`, runs.map((r) => r.data.params[k] ?? "")] as [string, string[]],
    ),
    ...keys.map((k) => [`metrics.${k}`, runs.map((r) => formatValue(r.data.metrics[k]))] as [string, string[]]),
  ];
  return (
    <section aria-labelledby="compare-title">
      <h1 id="compare-title">Compare {runs.length} runs</h1>
      <div className="scroll-x">
        <table className="grid compare" aria-label="Params and metrics">
          <thead>
            <tr>
              <th scope="col">Key</th>
              {runs.map((r) => (
                <th key={r.info.run_id} scope="col">
                  <Link to={paths.run(r.info.run_id)}>{r.info.run_name ?? r.info.run_id}</Link>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map(([k, values]) => {
              const differs = new Set(values).size > 1;
              return (
                <tr key={k} className={differs ? "differs" : undefined}>
                  <th scope="row">
                    {k}
                    {differs && <span className="sr-only"> (differs)</span>}
                  </th>
                  {values.map((v, i) => <td key={i}>{v}</td>)}
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <h2>Metrics</h2>
      <MetricCharts runs={runs.map((r) => ({ runId: r.info.run_id, runName: r.info.run_name ?? r.info.run_id }))} keys={keys} />
    </section>
  );
}
