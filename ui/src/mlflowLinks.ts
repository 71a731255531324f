// The links MLflow's client prints ("View run at: http://host/#/experiments/1/runs/abc")
// use MLflow's UI routes after a hash. Pointed at Ledgerflow, they open the same thing here.
import { paths } from "./routes";

const RULES: [RegExp, (m: string[]) => string][] = [
  [/^\/experiments\/([^/]+)\/runs\/([^/?]+)/, (m) => paths.run(m[2])],
  [/^\/experiments\/([^/?]+)/, (m) => paths.runs([m[1]])],
  [/^\/models\/([^/]+)\/versions\/([^/?]+)/, (m) => paths.modelVersion(decodeURIComponent(m[1]), m[2])],
  [/^\/models\/([^/?]+)/, (m) => paths.model(decodeURIComponent(m[1]))],
];

/** Ledgerflow's path for an MLflow UI hash route (`#/experiments/1/runs/abc`), or null. */
export function fromMlflowHash(hash: string): string | null {
  const route = hash.replace(/^#/, "");
  for (const [pattern, to] of RULES) {
    const m = pattern.exec(route);
    if (m) return to(m);
  }
  return null;
}
