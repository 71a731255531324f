import { useEffect, type RefObject } from "react";
import uPlot, { type AlignedData, type Options } from "uplot";
import "uplot/dist/uPlot.min.css";

/** A uPlot chart in `box`, made again when `opts`/`data` change, resized with its box. */
export function usePlot(box: RefObject<HTMLDivElement | null>, make: (width: number) => [Options, AlignedData] | null, deps: unknown[]) {
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const made = make(el.clientWidth || 560);
    if (!made) return;
    const [opts, data] = made;
    const u = new uPlot(opts, data, el);
    const resize = new ResizeObserver(() => u.setSize({ width: el.clientWidth, height: opts.height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
    };
    // the caller names what the chart depends on
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
}
