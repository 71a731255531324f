// The runs table's columns: the fixed ones, and the metric / param / tag columns a user
// chooses. A column's `key` is what the search API orders by (`order_by`), so sorting by
// any column is the server's sort over every run, not only the loaded ones.
import type { Run } from "../api/types";
import { formatDuration, formatTime, formatValue } from "../components/format";

export type Kind = "attribute" | "metrics" | "params" | "tags";

export interface Column {
  key: string; // e.g. "start_time", "metrics.accuracy"
  label: string;
  kind: Kind;
  width: number;
  /** Sorted by the server (order_by) unless false: then over the loaded rows. */
  serverSort: boolean;
  text: (run: Run) => string;
  sortValue: (run: Run) => number | string;
}

export const FIXED: Column[] = [
  { key: "run_name", label: "Run name", kind: "attribute", width: 220, serverSort: true,
    text: (r) => r.info.run_name ?? r.info.run_id, sortValue: (r) => r.info.run_name ?? "" },
  { key: "status", label: "Status", kind: "attribute", width: 100, serverSort: true,
    text: (r) => r.info.status, sortValue: (r) => r.info.status },
  { key: "user_id", label: "User", kind: "attribute", width: 110, serverSort: true,
    text: (r) => r.info.user_id, sortValue: (r) => r.info.user_id },
  { key: "start_time", label: "Start", kind: "attribute", width: 172, serverSort: true,
    text: (r) => formatTime(r.info.start_time), sortValue: (r) => r.info.start_time },
  { key: "duration", label: "Duration", kind: "attribute", width: 90, serverSort: false,
    text: (r) => formatDuration(r.info.start_time, r.info.end_time),
    sortValue: (r) => (r.info.end_time ?? Infinity) - r.info.start_time },
];

/** "metrics.accuracy" -> a column showing each run's latest accuracy. */
export function chosenColumn(key: string): Column {
  const dot = key.indexOf(".");
  const kind = key.slice(0, dot) as Kind;
  const name = key.slice(dot + 1);
  const read = (r: Run) => (r.data[kind as "metrics" | "params" | "tags"] ?? {})[name];
  return {
    key,
    label: name,
    kind,
    width: 120,
    serverSort: true,
    text: (r) => formatValue(read(r)),
    sortValue: (r) => read(r) ?? "",
  };
}

/** Every metric, param and tag key among `runs`, the most common first (the default
 * columns are the first few), for the column chooser. */
export function availableKeys(runs: Iterable<Run>): string[] {
  const counts = new Map<string, number>();
  const add = (k: string) => counts.set(k, (counts.get(k) ?? 0) + 1);
  for (const r of runs) {
    for (const k of Object.keys(r.data.metrics)) add(`metrics.${k}`);
    for (const k of Object.keys(r.data.params)) add(`params.${k}`);
    for (const k of Object.keys(r.data.tags)) if (!k.startsWith("mlflow.")) add(`tags.${k}`);
  }
  return [...counts.keys()].sort((a, b) => counts.get(b)! - counts.get(a)! || a.localeCompare(b));
}

/** The columns shown before the user chooses: the most common metrics, then params. */
export function defaultKeys(keys: string[]): string[] {
  const metrics = keys.filter((k) => k.startsWith("metrics.")).slice(0, 4);
  const params = keys.filter((k) => k.startsWith("params.")).slice(0, 3);
  return [...metrics, ...params];
}

/** The server's spelling of a sort: "metrics.`my key` DESC". */
export function orderBy(key: string, desc: boolean): string {
  const dot = key.indexOf(".");
  const quoted = dot < 0 || /^[\w.]+$/.test(key.slice(dot + 1)) ? key : `${key.slice(0, dot)}.\`${key.slice(dot + 1)}\``;
  return `${quoted} ${desc ? "DESC" : "ASC"}`;
}
