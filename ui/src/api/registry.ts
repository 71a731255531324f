// Wire shapes and calls of the model registry (see /docs: "registry" and "bundles").
import { get, post } from "./client";
import type { ModelVersion } from "./types";

/** A version as the registry's read routes send it (more than the run page needs). */
export interface Version extends ModelVersion {
  last_updated_timestamp: number;
  user_id: string;
  status_message: string | null;
  tags: Record<string, string>;
}

export interface RegisteredModel {
  name: string;
  creation_timestamp: number;
  last_updated_timestamp: number;
  description: string;
  latest_versions: Version[];
  tags: Record<string, string>;
  aliases: Record<string, number>;
}

export interface Parity {
  rtol: number;
  atol: number;
  max_abs_diff: number;
  inputs: number;
  passed: boolean;
}

export interface Bundle {
  id: string;
  name: string;
  version: number;
  target: string;
  status: "requested" | "built" | "failed";
  trigger: string;
  creation_timestamp: number;
  runtime: string | null;
  size_bytes: number | null;
  max_abs_diff: number | null;
  reason: string | null;
  manifest: { parity?: Parity } & Record<string, unknown>;
}

const enc = encodeURIComponent;
export const modelPath = (name: string) => `/registered-models/${enc(name)}`;

export const searchModels = (filter?: string) =>
  post<{ registered_models: RegisteredModel[] }>("/registered-models/search", { filter, order_by: ["name"] });

export const getModel = (name: string) => get<RegisteredModel>(modelPath(name));

export const modelVersions = (name: string) =>
  post<{ model_versions: Version[] }>("/model-versions/search", {
    filter: `name = '${name.replace(/'/g, "''")}'`,
    order_by: ["version_number DESC"],
  }).then((r) => r.model_versions);

export const getVersion = (name: string, version: number | string) =>
  get<Version>(`${modelPath(name)}/versions/${enc(String(version))}`);

export const versionBundles = (name: string, version: number | string) =>
  get<Bundle[]>(`${modelPath(name)}/versions/${enc(String(version))}/bundles?include_failed=true`);
