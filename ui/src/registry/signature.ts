// A version's signature, read from the MLmodel file of its source run's model folder
// (through the run's artifact routes, like the artifact browser).
import { get } from "../api/client";
import type { Version } from "../api/registry";
import type { Run } from "../api/types";
import { contentUrl } from "../artifacts/Preview";

export interface Signature {
  inputs: string;
  outputs: string;
}

/** The model folder inside the source run's artifacts: `runs:/ID/PATH`, or an artifact
 * location under the run's artifact URI. Null when the version names no run. */
async function modelFolder(v: Version): Promise<string | null> {
  if (!v.run_id) return null;
  const m = /^runs:\/[^/]+\/?(.*)$/.exec(v.source);
  if (m) return m[1];
  const run = await get<Run>(`/runs/${v.run_id}`);
  const root = run.info.artifact_uri.replace(/\/+$/, "");
  return v.source.startsWith(root) ? v.source.slice(root.length).replace(/^\/+/, "") : null;
}

/** The inputs and outputs of the version's signature as short text ("" when none). */
export async function versionSignature(v: Version): Promise<Signature | null> {
  const folder = await modelFolder(v);
  if (folder === null || !v.run_id) return null;
  const res = await fetch(contentUrl(v.run_id, `${folder ? folder + "/" : ""}MLmodel`));
  if (!res.ok) return null;
  const yaml = await import("yaml");
  const doc = yaml.parse(await res.text()) as { signature?: Record<string, string | null> };
  const describe = (s: string | null | undefined): string => {
    if (!s) return "";
    try {
      const cols = JSON.parse(s) as { name?: string; type: string; "tensor-spec"?: { dtype: string; shape: number[] } }[];
      return cols
        .map((c) => `${c.name ?? "tensor"}: ${c["tensor-spec"] ? `${c["tensor-spec"].dtype}[${c["tensor-spec"].shape.join(", ")}]` : c.type}`)
        .join("; ");
    } catch {
      return s;
    }
  };
  return { inputs: describe(doc.signature?.inputs), outputs: describe(doc.signature?.outputs) };
}
