import type { Analysis } from "../api/deployments";

const pct = (x: number | null | undefined) => (x === null || x === undefined ? "" : `${(100 * x).toFixed(1)}%`);
const ms = (x: number | null | undefined) => (x === null || x === undefined ? "" : `${x.toFixed(1)} ms`);
const ci = (c: [number, number] | null, f: (x: number) => string) => (c ? ` [${f(c[0])}, ${f(c[1])}]` : "");
const VERDICT: Record<string, string> = {
  baseline: "baseline",
  not_enough_data: "not enough data",
  better: "better",
  worse: "worse",
  no_difference: "no difference",
};

/** The live per-variant statistics of `GET /deployments/{name}/analysis`. */
export function StatsTable({ analysis }: { analysis: Analysis }) {
  const rate = analysis.kind === "conversion";
  const fmt = (x: number) => (rate ? pct(x) : x.toPrecision(4));
  return (
    <div className="scroll-x">
      <table className="grid" aria-label="Variant statistics">
        <caption className="muted">
          Outcome: {analysis.metric} ({rate ? "rate" : "mean"}, 95% intervals); α = {analysis.alpha}
          {analysis.correction !== "none" ? `, ${analysis.correction} correction` : ""}
        </caption>
        <thead>
          <tr>
            <th scope="col">Variant</th>
            <th scope="col">Weight</th>
            <th scope="col">Requests</th>
            <th scope="col">Error rate</th>
            <th scope="col">p50</th>
            <th scope="col">p99</th>
            <th scope="col">Outcome</th>
            <th scope="col">Effect vs baseline</th>
            <th scope="col">p-value</th>
            <th scope="col">Verdict</th>
          </tr>
        </thead>
        <tbody>
          {analysis.variants.map((v) => (
            <tr key={v.variant} aria-label={`Statistics of ${v.variant}`} data-requests={v.count}>
              <th scope="row">
                {v.variant}
                {v.shadow ? " (shadow)" : ""}
              </th>
              <td>{pct(v.weight)}</td>
              <td className="num" aria-label="Requests">
                {v.count}
              </td>
              <td>
                {pct(v.error_rate)}
                <span className="muted">{ci(v.error_rate_ci, pct)}</span>
              </td>
              <td>{ms(v.latency_p50_ms)}</td>
              <td>{ms(v.latency_p99_ms)}</td>
              <td>
                {v.value === null ? "" : fmt(v.value)}
                <span className="muted">{ci(v.value_ci, fmt)}</span> <span className="muted">n={v.n}</span>
              </td>
              <td>
                {v.effect === null ? "" : fmt(v.effect)}
                <span className="muted">{ci(v.effect_ci, fmt)}</span>
              </td>
              <td>
                {v.adjusted_p_value ?? v.p_value ?? ""}
                {v.significant ? " (significant)" : ""}
              </td>
              <td className={`verdict verdict-${v.state}`}>
                {VERDICT[v.state] ?? v.state}
                {v.state === "not_enough_data" && v.more_needed > 0 ? ` (${v.more_needed} more needed)` : ""}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
