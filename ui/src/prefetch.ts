// The requests a deep-linked page will make, started before the application's own code runs
// and chained as soon as each answer arrives: a run's metrics page asks for the run (which
// the server has already told the browser to preload: services/ui/site.py), and with its
// metric keys for the charts at the top of the page, as soon as the browser can run the
// answer's callback (after the application's modules are evaluated), rather than after React
// has rendered the page and mounted its charts. The page's own requests then take these
// answers (api/client.ts `prefetch`). The entry point (main.tsx) imports this first.
import { prefetch } from "./api/client";
import type { Run } from "./api/types";
import { CHART_POINTS, seriesQuestion } from "./charts/series";
import { DEFAULT_OPTIONS } from "./charts/options";

/** Charts a 1280×800 window shows before any scrolling (the rest wait to be scrolled to). */
const CHARTS_IN_VIEW = 4;

const metricsPage = /^\/runs\/([^/]+)\/metrics\/?$/.exec(window.location.pathname);
if (metricsPage) {
  const runId = decodeURIComponent(metricsPage[1]);
  const x = DEFAULT_OPTIONS.x;
  prefetch<Run>("GET", `/runs/${runId}`)
    .then((run) => {
      if (x === "relative") return;
      for (const key of Object.keys(run.data.metrics).sort().slice(0, CHARTS_IN_VIEW)) {
        prefetch("POST", "/metrics/series", seriesQuestion([{ runId, key }], x, CHART_POINTS));
      }
    })
    .catch(() => undefined);
}
