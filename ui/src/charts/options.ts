import type { XMode } from "./series";

/** How a set of charts is drawn: the x axis, the y scale and the smoothing. */
export interface ChartOptions {
  x: XMode;
  log: boolean;
  smoothing: number;
}

export const DEFAULT_OPTIONS: ChartOptions = { x: "step", log: false, smoothing: 0 };
