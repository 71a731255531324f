// Where a chart's points come from. Series are downsampled on the server so a
// 1,000,000-point metric costs the browser as little as a 1,000-point one; a zoom asks
// again for the zoomed range only, at full detail for it.
import { get, num, query } from "../api/client";
import type { MetricHistory } from "../api/types";

export type XMode = "step" | "time" | "relative";

export interface SeriesRef {
  runId: string;
  runName: string;
  key: string;
}

export interface Series {
  ref: SeriesRef;
  /** x in the chart's unit: step, or seconds (wall clock or since the first point). */
  xs: number[];
  values: number[];
  count: number;
  downsampled: boolean;
}

export interface Range {
  start: number;
  end: number;
}

/** One series, at most `points` points, over `range` of x when given. */
export async function fetchSeries(ref: SeriesRef, x: XMode, points: number, range?: Range): Promise<Series> {
  // GET /runs/{id}/metrics/history keeps each bucket's extremes (shape-preserving) but has
  // no range: a zoom filters what it returned.
  const h = await get<MetricHistory>(
    `/runs/${ref.runId}/metrics/history` + query({ key: ref.key, max_points: points }),
  );
  const first = h.timestamps.length ? h.timestamps[0] : 0;
  let xs =
    x === "step" ? h.steps : x === "time" ? h.timestamps.map((t) => t / 1000) : h.timestamps.map((t) => (t - first) / 1000);
  let values = h.values.map(num);
  if (range) {
    const keep = xs.map((v) => v >= range.start && v <= range.end);
    xs = xs.filter((_, i) => keep[i]);
    values = values.filter((_, i) => keep[i]);
  }
  return { ref, xs, values, count: h.steps.length, downsampled: false };
}
