import { useEffect, useMemo, useRef, useState } from "react";
import uPlot, { type AlignedData, type Options } from "uplot";
import "uplot/dist/uPlot.min.css";
import type { ChartOptions } from "./options";
import { useEventStream } from "../api/events";
import { num } from "../api/client";
import { CHART_POINTS, fetchSeries, type Range, type Series, type SeriesRef } from "./series";
import { ema } from "./smoothing";

const HEIGHT = 260;
const COLORS = ["#1f6feb", "#d9480f", "#2b8a3e", "#9c36b5", "#c92a2a", "#0b7285", "#5f3dc4", "#e67700"];

/** Series with different x values on one shared, sorted x (uPlot's aligned data): per
 * series its (smoothed) line, then its bucket maxima and minima (the band drawn around the
 * line, so a spike inside a bucket still shows). A series has null where it has no point. */
function align(series: Series[], smoothing: number): AlignedData {
  const xs = [...new Set(series.flatMap((s) => s.xs))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const column = (s: Series, values: number[]) => {
    const col: (number | null)[] = new Array(xs.length).fill(null);
    s.xs.forEach((x, i) => {
      col[index.get(x)!] = Number.isFinite(values[i]) ? values[i] : null;
    });
    return col;
  };
  const ys = series.flatMap((s) => [column(s, ema(s.values, smoothing)), column(s, s.maxs), column(s, s.mins)]);
  return [xs, ...ys] as AlignedData;
}

/** A canvas line chart (uPlot) of several metrics of several runs. Dragging zooms and
 * fetches the zoomed range again at full detail; a double-click goes back. */
export function MetricChart({ title, refs, options }: { title: string; refs: SeriesRef[]; options: ChartOptions }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const [series, setSeries] = useState<Series[] | null>(null);
  const [after, setAfter] = useState<string | null>(null);
  const [range, setRange] = useState<Range | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const refsKey = refs.map((r) => `${r.runId}/${r.key}`).join("|");

  useEffect(() => setRange(undefined), [refsKey, options.x]);

  useEffect(() => {
    let live = true;
    fetchSeries(refs, options.x, CHART_POINTS, range)
      .then((f) => live && (setSeries(f.series), setAfter(f.after), setError(null)))
      .catch((e) => live && setError(String(e.message ?? e)));
    return () => {
      live = false;
    };
    // refs is described by refsKey
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [refsKey, options.x, range]);

  // New points arrive on the event stream and are appended (unless zoomed into a range):
  // the chart follows a training run without polling, from the log position its series
  // reflect, so a point logged while they were being fetched is not lost.
  useEventStream(
    ["run.metrics_logged"],
    (e) => {
      const d = e.data as { run_id: string; points: [string, number | string, number, number][] };
      setSeries((current) => {
        if (!current || range) return current;
        let changed = false;
        const next = current.map((s) => {
          if (s.ref.runId !== d.run_id) return s;
          const mine = d.points.filter((p) => p[0] === s.ref.key);
          if (mine.length === 0) return s;
          changed = true;
          const origin = options.x === "relative" ? s.origin : 0;
          const xs = mine.map(([, , ts, step]) => (options.x === "step" ? step : (ts - origin) / 1000));
          const values = mine.map(([, v]) => num(v));
          return {
            ...s,
            xs: [...s.xs, ...xs],
            values: [...s.values, ...values],
            mins: [...s.mins, ...values],
            maxs: [...s.maxs, ...values],
            count: s.count + mine.length,
          };
        });
        return changed ? next : current;
      });
    },
    series !== null,
    after,
  );

  const data = useMemo(() => (series ? align(series, options.smoothing) : null), [series, options.smoothing]);

  useEffect(() => {
    const el = box.current;
    if (!el || !data || !series) return;
    const time = options.x === "time";
    const manyRuns = new Set(series.map((s) => s.ref.runId)).size > 1;
    const opts: Options = {
      width: el.clientWidth || 600,
      height: HEIGHT,
      scales: { x: { time }, y: { distr: options.log ? 3 : 1 } },
      axes: [{ label: options.x === "step" ? "step" : options.x === "time" ? "" : "seconds" }, {}],
      series: [
        {},
        ...series.flatMap((s, i) => {
          const color = COLORS[i % COLORS.length];
          const label = manyRuns ? `${s.ref.runName} · ${s.ref.key}` : s.ref.key;
          const edge = { label: `${label} (bucket extremes)`, class: "band-edge", stroke: "transparent", width: 0, spanGaps: true, points: { show: false } };
          const few = s.xs.length <= 50; // a line of a few points needs its points marked
          return [{ label, stroke: color, width: 1.5, spanGaps: true, points: { show: few, size: 6, fill: color } }, edge, { ...edge }];
        }),
      ],
      bands: series.map((_, i) => ({ series: [2 + 3 * i, 3 + 3 * i] as [number, number], fill: `${COLORS[i % COLORS.length]}33` })),
      cursor: { drag: { x: true, y: false } },
      hooks: {
        setSelect: [
          (u) => {
            if (u.select.width < 4) return;
            const start = u.posToVal(u.select.left, "x");
            const end = u.posToVal(u.select.left + u.select.width, "x");
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            setRange({ start, end });
          },
        ],
      },
    };
    opts.cursor!.drag!.setScale = false;
    const u = new uPlot(opts, data, el);
    plot.current = u;
    const resize = new ResizeObserver(() => u.setSize({ width: el.clientWidth, height: HEIGHT }));
    resize.observe(el);
    const reset = () => setRange(undefined);
    u.over.addEventListener("dblclick", reset);
    return () => {
      resize.disconnect();
      u.over.removeEventListener("dblclick", reset);
      u.destroy();
      plot.current = null;
    };
  }, [data, series, options.log, options.x]);

  const points = series?.reduce((n, s) => n + s.xs.length, 0) ?? 0;
  const logged = series?.reduce((n, s) => n + s.count, 0) ?? 0;
  return (
    <figure
      className="chart"
      data-series-count={series?.length ?? 0}
      data-points={points}
      data-logged={logged}
      aria-label={`Chart ${title}`}
    >
      <figcaption>
        <strong>{title}</strong>{" "}
        <span className="muted">
          {series ? `${series.length} series · ${points} of ${logged} points drawn` : "loading…"}
          {range ? " · zoomed" : ""}
        </span>
        {range && (
          <button type="button" className="small" onClick={() => setRange(undefined)}>
            Reset zoom
          </button>
        )}
      </figcaption>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      <div ref={box} className="chart-canvas" style={{ height: HEIGHT + 40 }} />
    </figure>
  );
}
