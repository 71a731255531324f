import { useEffect, useMemo, useState } from "react";
import { useSearchParams } from "react-router-dom";
import { get } from "../api/client";
import type { Run } from "../api/types";
import { MetricCharts } from "../charts/MetricCharts";
import { columnsOf } from "../compare/columns";
import { DiffTable } from "../compare/DiffTable";
import { ParallelCoordinates } from "../compare/ParallelCoordinates";
import { Scatter } from "../compare/Scatter";
import { ErrorBox, Loading } from "../components/Status";

const DEFAULT_AXES = 6;

/** Several runs side by side: their params and metrics with the rows that differ marked
 * (or only those), a parallel-coordinates view over chosen columns, a scatter of any two
 * columns, and overlaid metric charts.
 * URL: /compare?runs=ID,ID,…&diff=1&axes=params.lr,metrics.acc&x=params.lr&y=metrics.acc */
export function ComparePage() {
  const [params, setParams] = useSearchParams();
  const runsParam = params.get("runs") ?? "";
  const ids = useMemo(() => runsParam.split(",").filter(Boolean), [runsParam]);
  const [runs, setRuns] = useState<Run[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    Promise.all(ids.map((id) => get<Run>(`/runs/${id}`)))
      .then(setRuns)
      .catch(setError);
  }, [ids]);
  const columns = useMemo(() => (runs ? columnsOf(runs) : []), [runs]);
  if (error) return <ErrorBox error={error} />;
  if (!runs) return <Loading what="runs" />;

  const set = (key: string, value: string | null) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
  };
  const onlyDiffering = params.get("diff") === "1";
  const byKey = new Map(columns.map((c) => [c.key, c]));
  const axesParam = params.get("axes");
  const axes = axesParam !== null
    ? axesParam.split(",").filter((k) => byKey.has(k))
    : columns.filter((c) => c.differs).slice(0, DEFAULT_AXES).map((c) => c.key);
  const toggleAxis = (key: string) =>
    set("axes", (axes.includes(key) ? axes.filter((k) => k !== key) : [...axes, key]).join(",") || ",");
  const differing = columns.filter((c) => c.differs);
  const x = byKey.get(params.get("x") ?? "") ?? differing[0] ?? columns[0];
  const y = byKey.get(params.get("y") ?? "") ?? differing.find((c) => c.key.startsWith("metrics.")) ?? columns[columns.length - 1];
  const metricKeys = [...new Set(runs.flatMap((r) => Object.keys(r.data.metrics)))].sort();

  return (
    <section aria-labelledby="compare-title">
      <h1 id="compare-title">Compare {runs.length} runs</h1>
      <h2 id="diff-title">Params and metrics</h2>
      <div className="toolbar">
        <label>
          <input type="checkbox" checked={onlyDiffering} onChange={(e) => set("diff", e.target.checked ? "1" : null)} />
          Show only differences
        </label>
        <span className="muted">
          {differing.length} of {columns.length} differ
        </span>
      </div>
      <DiffTable runs={runs} columns={columns} onlyDiffering={onlyDiffering} />
      {columns.length > 0 && (
        <>
          <h2>Parallel coordinates and scatter</h2>
          <fieldset className="column-picks">
            <legend>Axes of the parallel coordinates</legend>
            {columns.map((c) => (
              <label key={c.key}>
                <input type="checkbox" checked={axes.includes(c.key)} onChange={() => toggleAxis(c.key)} />
                {c.key}
              </label>
            ))}
          </fieldset>
          <div className="toolbar">
            <label>
              Scatter x
              <select value={x.key} onChange={(e) => set("x", e.target.value)}>
                {columns.map((c) => (
                  <option key={c.key}>{c.key}</option>
                ))}
              </select>
            </label>
            <label>
              Scatter y
              <select value={y.key} onChange={(e) => set("y", e.target.value)}>
                {columns.map((c) => (
                  <option key={c.key}>{c.key}</option>
                ))}
              </select>
            </label>
          </div>
          <div className="compare-plots">
            <ParallelCoordinates runs={runs} columns={axes.map((k) => byKey.get(k)!)} />
            <Scatter runs={runs} x={x} y={y} />
          </div>
        </>
      )}
      <h2>Metrics</h2>
      <MetricCharts runs={runs.map((r) => ({ runId: r.info.run_id, runName: r.info.run_name ?? r.info.run_id }))} keys={metricKeys} />
    </section>
  );
}
