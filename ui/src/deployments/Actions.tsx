import { useState } from "react";
import { ApiError, post } from "../api/client";
import { deploymentPath, type Deployment } from "../api/deployments";
import { lacking, useMyLevel } from "../api/permissions";
import { Confirm } from "./Confirm";

interface Pending {
  question: string;
  path: string;
  body: Record<string, unknown>;
}

/** Promote / rollback / pause (resume), each confirmed first, and offered only to a user
 * with MANAGE on the deployment (the others see why not); a refusal (a rule of the
 * deployment, or a grant changed meanwhile) is shown as the gateway words it. */
export function Actions({ deployment: d, onDone }: { deployment: Deployment; onDone: () => void }) {
  const others = d.variants.filter((v) => !v.shadow && v.name !== d.baseline).map((v) => v.name);
  const [promoted, setPromoted] = useState(others[0] ?? "");
  const [pending, setPending] = useState<Pending | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const base = deploymentPath(d.name);
  const refused = lacking(useMyLevel("deployment", d.name), "MANAGE", "promoting, rolling back or pausing it", `deployment ${d.name}`);
  const allowed = { disabled: refused !== null, title: refused ?? undefined };
  const act = async (p: Pending) => {
    setPending(null);
    setMessage(null);
    try {
      await post(p.path, p.body);
      onDone();
    } catch (e) {
      setMessage(
        e instanceof ApiError && e.status === 403
          ? `Not allowed: ${e.message}. Changing a deployment needs MANAGE on it.`
          : e instanceof Error
            ? e.message
            : String(e),
      );
    }
  };
  return (
    <section aria-label="Actions" className="toolbar">
      {others.length > 0 && (
        <>
          <label>
            Variant to promote
            <select value={promoted} onChange={(e) => setPromoted(e.target.value)}>
              {others.map((n) => (
                <option key={n}>{n}</option>
              ))}
            </select>
          </label>
          <button
            type="button"
            {...allowed}
            onClick={() =>
              setPending({
                question: `Promote ${promoted}: all traffic to it, it becomes the baseline, and @champion moves to its version?`,
                path: `${base}/promote`,
                body: { variant: promoted, reason: "promoted from the web UI" },
              })
            }
          >
            Promote…
          </button>
        </>
      )}
      <button
        type="button"
        className="danger"
        {...allowed}
        onClick={() =>
          setPending({ question: `Roll back: all traffic to the baseline ${d.baseline}?`, path: `${base}/rollback`, body: { reason: "rolled back from the web UI" } })
        }
      >
        Roll back…
      </button>
      {d.status === "paused" ? (
        <button type="button" {...allowed} onClick={() => setPending({ question: "Resume canary steps and guardrails?", path: `${base}/resume`, body: {} })}>
          Resume…
        </button>
      ) : (
        <button
          type="button"
          {...allowed}
          onClick={() =>
            setPending({ question: "Pause canary steps and automatic rollback (traffic stays as it is)?", path: `${base}/pause`, body: { reason: "paused from the web UI" } })
          }
        >
          Pause…
        </button>
      )}
      {refused && <p className="muted">{refused}</p>}
      {pending && <Confirm question={pending.question} onYes={() => void act(pending)} onNo={() => setPending(null)} />}
      {message && (
        <p role="alert" className="error">
          {message}
        </p>
      )}
    </section>
  );
}
