// Wire shapes and calls of the deployments API (see /docs: "deployments").
import { get } from "./client";

export interface Variant {
  name: string;
  model: string;
  version: number;
  bundle_id: string | null;
  weight: number;
  shadow: boolean;
}

export interface Guardrail {
  metric: string;
  bound: "max" | "min";
  threshold: number;
  relative: boolean;
  min_samples: number;
}

export interface CanaryStep {
  weight: number;
  min_duration_s: number;
  min_requests: number;
}

export interface Deployment {
  name: string;
  status: "active" | "paused" | "deleted";
  description: string;
  baseline: string;
  variants: Variant[];
  weights: Record<string, number>;
  key_header: string;
  guardrails: Guardrail[];
  plan: { candidate: string; steps: CanaryStep[] } | null;
  step: number | null;
  step_started: number | null;
  last_action: string;
  last_reason: string;
  promoted: string | null;
  created: number;
  updated: number;
}

export interface VariantStats {
  variant: string;
  state: string;
  count: number;
  errors: number;
  error_rate: number | null;
  error_rate_ci: [number, number] | null;
  latency_p50_ms: number | null;
  latency_p99_ms: number | null;
  n: number;
  value: number | null;
  value_ci: [number, number] | null;
  shadow: boolean;
  effect: number | null;
  effect_ci: [number, number] | null;
  p_value: number | null;
  adjusted_p_value: number | null;
  significant: boolean;
  more_needed: number;
  weight: number;
}

export interface Analysis {
  deployment: string;
  baseline: string;
  metric: string;
  kind: "conversion" | "reward";
  alpha: number;
  correction: string;
  variants: VariantStats[];
}

export interface Change {
  seq: number;
  time: number;
  type: string;
  actor: string;
  summary: Record<string, unknown>;
}

const enc = encodeURIComponent;
export const deploymentPath = (name: string) => `/deployments/${enc(name)}`;
export const listDeployments = () => get<Deployment[]>("/deployments");
export const getDeployment = (name: string) => get<Deployment>(deploymentPath(name));
export const getHistory = (name: string) => get<Change[]>(`${deploymentPath(name)}/history?limit=50`);
export const getAnalysis = (name: string, metric?: string) =>
  get<Analysis>(`${deploymentPath(name)}/analysis${metric ? `?metric=${enc(metric)}` : ""}`);
