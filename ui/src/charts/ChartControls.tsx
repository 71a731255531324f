import type { ChartOptions } from "./options";
import type { XMode } from "./series";

/** The x axis, y scale and smoothing of a set of charts. */
export function ChartControls({ value, onChange }: { value: ChartOptions; onChange: (o: ChartOptions) => void }) {
  return (
    <div className="toolbar chart-controls" role="group" aria-label="Chart options">
      <label>
        X axis
        <select value={value.x} onChange={(e) => onChange({ ...value, x: e.target.value as XMode })}>
          <option value="step">step</option>
          <option value="time">wall time</option>
          <option value="relative">relative time</option>
        </select>
      </label>
      <label>
        <input type="checkbox" checked={value.log} onChange={(e) => onChange({ ...value, log: e.target.checked })} /> Log
        scale
      </label>
      <label>
        Smoothing
        <input
          type="range"
          min={0}
          max={0.99}
          step={0.01}
          value={value.smoothing}
          onChange={(e) => onChange({ ...value, smoothing: Number(e.target.value) })}
        />
        <output>{value.smoothing.toFixed(2)}</output>
      </label>
      <span className="muted">Drag across a chart to zoom; double-click to reset.</span>
    </div>
  );
}
