import { useRef } from "react";
import type { AlignedData } from "uplot";
import type { Run } from "../api/types";
import { formatValue } from "../components/format";
import { COLORS, type Column } from "./columns";
import { usePlot } from "./usePlot";

const HEIGHT = 300;

/** Each run a line across one vertical axis per chosen column (uPlot: x = the axis, y = the
 * value scaled into the column's own min..max, so columns of any range sit side by side).
 * The legend and the table under the chart give the real values and each axis's range. */
export function ParallelCoordinates({ runs, columns }: { runs: Run[]; columns: Column[] }) {
  const box = useRef<HTMLDivElement>(null);
  const ranges = columns.map((c) => {
    const vs = c.numbers.filter((v): v is number => v !== null && Number.isFinite(v));
    return vs.length ? [Math.min(...vs), Math.max(...vs)] : [0, 0];
  });
  const scaled = (ci: number, v: number | null) => {
    if (v === null || !Number.isFinite(v)) return null;
    const [lo, hi] = ranges[ci];
    return hi === lo ? 0.5 : (v - lo) / (hi - lo);
  };
  const key = columns.map((c) => c.key).join("|") + runs.map((r) => r.info.run_id).join("|");
  usePlot(
    box,
    (width) => {
      if (columns.length < 2) return null;
      const xs = columns.map((_, i) => i);
      const data = [xs, ...runs.map((_, ri) => columns.map((c, ci) => scaled(ci, c.numbers[ri])))] as AlignedData;
      return [
        {
          width,
          height: HEIGHT,
          scales: { x: { time: false, range: [-0.2, columns.length - 0.8] }, y: { range: [-0.05, 1.05] } },
          axes: [
            { splits: () => xs, values: (_u, splits) => splits.map((i) => columns[i]?.key ?? ""), grid: { stroke: "#57606a", width: 1.5 }, size: 40 },
            { show: false },
          ],
          series: [
            { label: "axis", value: (_u, i) => (i === null ? "" : (columns[i]?.key ?? "")) },
            ...runs.map((r, ri) => ({
              label: r.info.run_name ?? r.info.run_id,
              stroke: COLORS[ri % COLORS.length],
              width: 2,
              points: { show: true, size: 7 },
              value: (_u: unknown, _v: number | null, _s: number, i: number | null) => (i === null ? "" : columns[i].texts[ri]),
            })),
          ],
          cursor: { drag: { x: false, y: false } },
        },
        data,
      ];
    },
    [key],
  );
  if (columns.length < 2) return <p className="muted">Choose at least two columns.</p>;
  return (
    <figure className="chart" aria-label="Parallel coordinates" data-axes={columns.length} data-lines={runs.length}>
      <figcaption>
        <strong>Parallel coordinates</strong> <span className="muted">{columns.length} axes · {runs.length} runs</span>
      </figcaption>
      <div ref={box} />
      <table className="grid" aria-label="Axis ranges">
        <tbody>
          <tr>
            <th scope="row">axis</th>
            {columns.map((c) => (
              <td key={c.key}>{c.key}</td>
            ))}
          </tr>
          <tr>
            <th scope="row">range</th>
            {columns.map((c, i) => (
              <td key={c.key}>{c.categories ? c.categories.join(" · ") : `${formatValue(ranges[i][0])} … ${formatValue(ranges[i][1])}`}</td>
            ))}
          </tr>
        </tbody>
      </table>
    </figure>
  );
}
