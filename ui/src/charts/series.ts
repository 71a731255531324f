// Where a chart's points come from: the server's metric series (GET
// /runs/{id}/metrics/series, POST /metrics/series), downsampled there into at most
// `points` buckets that keep each bucket's min and max, so a 1,000,000-point metric costs
// the browser what a 1,000-point one does. A zoom asks again for the zoomed range only.
import { get, num, post, query } from "../api/client";

export type XMode = "step" | "time" | "relative";

export interface SeriesRef {
  runId: string;
  runName: string;
  key: string;
}

/** The API's answer for one series. */
interface Wire {
  run_id: string;
  key: string;
  x: "step" | "time";
  count: number;
  downsampled: boolean;
  xs: number[];
  values: (number | string)[];
  mins: (number | string)[];
  maxs: (number | string)[];
  timestamps: number[];
}

export interface Series {
  ref: SeriesRef;
  /** x in the chart's unit: step, or seconds (wall clock, or since the run's first point). */
  xs: number[];
  values: number[];
  mins: number[];
  maxs: number[];
  /** How many points the range holds on the server. */
  count: number;
  downsampled: boolean;
  /** Relative time: the run's first timestamp (ms), which is x = 0. */
  origin: number;
}

/** A range of x in the chart's unit. */
export interface Range {
  start: number;
  end: number;
}

function convert(ref: SeriesRef, w: Wire, x: XMode, origin = 0): Series {
  const xs = x === "step" ? w.xs : w.xs.map((t) => (t - origin) / 1000);
  return {
    ref,
    xs,
    values: w.values.map(num),
    mins: w.mins.map(num),
    maxs: w.maxs.map(num),
    count: w.count,
    downsampled: w.downsampled,
    origin,
  };
}

/** How many points a chart asks for per series (each bucket keeps its min and max too). */
export const CHART_POINTS = 1000;

/** The question `POST /metrics/series` is asked for a chart in step or time mode. */
export function seriesQuestion(refs: Pick<SeriesRef, "runId" | "key">[], x: "step" | "time", points: number, range?: Range) {
  const scale = x === "time" ? 1000 : 1;
  return {
    series: refs.map((r) => ({ run_id: r.runId, key: r.key })),
    points,
    x,
    start: range ? Math.floor(range.start * scale) : null,
    end: range ? Math.ceil(range.end * scale) : null,
  };
}

/** A chart's series, and the log position they reflect (null when unknown: relative time). */
export interface Fetched {
  series: Series[];
  after: string | null;
}

/** Every series of a chart at most `points` points each, over `range` when given. */
export async function fetchSeries(refs: SeriesRef[], x: XMode, points: number, range?: Range): Promise<Fetched> {
  if (x !== "relative") {
    const page = await post<{ series: Wire[]; after: string }>("/metrics/series", seriesQuestion(refs, x, points, range));
    return { series: page.series.map((w, i) => convert(refs[i], w, x)), after: page.after };
  }
  // relative time: each run's x starts at its own first point, so each range differs
  const series = await Promise.all(
    refs.map(async (ref) => {
      const path = `/runs/${ref.runId}/metrics/series`;
      const first = await get<Wire>(path + query({ key: ref.key, x: "time", points: 2 }));
      const origin = first.timestamps[0] ?? 0;
      const w = range
        ? await get<Wire>(
            path +
              query({ key: ref.key, x: "time", points, start: Math.floor(origin + range.start * 1000), end: Math.ceil(origin + range.end * 1000) }),
          )
        : await get<Wire>(path + query({ key: ref.key, x: "time", points }));
      return convert(ref, w, "relative", origin);
    }),
  );
  return { series, after: null };
}
