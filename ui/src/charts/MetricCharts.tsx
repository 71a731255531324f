import { useState } from "react";
import { ChartControls } from "./ChartControls";
import { DEFAULT_OPTIONS, type ChartOptions } from "./options";
import { LazyMount } from "./LazyMount";
import { MetricChart } from "./MetricChart";
import type { SeriesRef } from "./series";

export interface RunRef {
  runId: string;
  runName: string;
}

/** One chart per metric key, each with every given run overlaid; charts below the fold
 * are drawn when scrolled to. Used by the run page and the compare page. */
export function MetricCharts({ runs, keys }: { runs: RunRef[]; keys: string[] }) {
  const [options, setOptions] = useState<ChartOptions>(DEFAULT_OPTIONS);
  if (keys.length === 0) return <p className="muted">No metrics logged.</p>;
  return (
    <div className="charts">
      <ChartControls value={options} onChange={setOptions} />
      <div className="chart-grid">
        {keys.map((key) => {
          const refs: SeriesRef[] = runs.map((r) => ({ ...r, key }));
          return (
            <LazyMount key={key} height={300} label={`Chart ${key}`}>
              <MetricChart title={key} refs={refs} options={options} />
            </LazyMount>
          );
        })}
      </div>
    </div>
  );
}
