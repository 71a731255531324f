import type { Deployment, Variant } from "../api/deployments";

/** What a variant is in its deployment: the baseline others are compared with, a running
 * canary's candidate, a shadow (copies of requests, answers never returned), or a
 * challenger. */
export function roleOf(d: Deployment, v: Variant): string {
  if (v.shadow) return "shadow";
  if (v.name === d.baseline) return "baseline";
  if (d.plan?.candidate === v.name) return "canary candidate";
  return "challenger";
}

/** A variant's share of the (non-shadow) traffic, in percent. */
export function weightPercent(d: Deployment, name: string): string {
  const total = Object.values(d.weights).reduce((a, b) => a + b, 0);
  const w = d.weights[name] ?? 0;
  return total > 0 ? `${Number(((100 * w) / total).toFixed(1))}%` : "0%";
}
