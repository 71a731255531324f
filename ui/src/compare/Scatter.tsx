import { useRef } from "react";
import type { AlignedData } from "uplot";
import type { Run } from "../api/types";
import { COLORS, type Column } from "./columns";
import { usePlot } from "./usePlot";

const HEIGHT = 300;

/** One point per run at (x column, y column), drawn by uPlot as point-only series (one per
 * run, so the legend names each run in its colour). Categorical columns are placed at
 * their category's index, labelled with the category. */
export function Scatter({ runs, x, y }: { runs: Run[]; x: Column; y: Column }) {
  const box = useRef<HTMLDivElement>(null);
  const placed = runs
    .map((r, ri) => ({ ri, run: r, x: x.numbers[ri], y: y.numbers[ri] }))
    .filter((p): p is { ri: number; run: Run; x: number; y: number } => p.x !== null && p.y !== null && Number.isFinite(p.x) && Number.isFinite(p.y));
  const key = `${x.key}|${y.key}|${runs.map((r) => r.info.run_id).join("|")}`;
  const label = (c: Column) => (c.categories ? (_u: unknown, splits: number[]) => splits.map((v) => (Number.isInteger(v) ? (c.categories![v] ?? "") : "")) : undefined);
  usePlot(
    box,
    (width) => {
      if (placed.length === 0) return null;
      const order = [...placed].sort((a, b) => a.x - b.x);
      const xs = order.map((p) => p.x);
      const data = [xs, ...order.map((p, i) => order.map((_, j) => (i === j ? p.y : null)))] as AlignedData;
      const pad = (c: Column, vs: number[]): [number, number] => {
        const lo = Math.min(...vs);
        const hi = Math.max(...vs);
        const m = c.categories ? 0.5 : hi === lo ? Math.abs(lo) * 0.1 || 1 : (hi - lo) * 0.08;
        return [lo - m, hi + m];
      };
      return [
        {
          width,
          height: HEIGHT,
          mode: 1,
          scales: { x: { time: false, range: pad(x, xs) }, y: { range: pad(y, order.map((p) => p.y)) } },
          axes: [
            { label: x.key, values: label(x), ...(x.categories ? { splits: () => x.categories!.map((_, i) => i) } : {}) },
            { label: y.key, values: label(y), size: 60, ...(y.categories ? { splits: () => y.categories!.map((_, i) => i) } : {}) },
          ],
          series: [
            { label: x.key },
            ...order.map((p) => ({
              label: p.run.info.run_name ?? p.run.info.run_id,
              stroke: COLORS[p.ri % COLORS.length],
              fill: COLORS[p.ri % COLORS.length],
              paths: () => null,
              points: { show: true, size: 10, fill: COLORS[p.ri % COLORS.length] },
            })),
          ],
          cursor: { drag: { x: false, y: false } },
        },
        data,
      ];
    },
    [key],
  );
  return (
    <figure className="chart" aria-label={`Scatter of ${y.key} against ${x.key}`} data-points={placed.length}>
      <figcaption>
        <strong>
          {y.key} against {x.key}
        </strong>{" "}
        <span className="muted">
          {placed.length} of {runs.length} runs have both
        </span>
      </figcaption>
      <div ref={box} />
    </figure>
  );
}
