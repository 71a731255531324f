import { useCallback, useEffect, useRef, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { getAnalysis, getDeployment, getHistory, type Analysis, type Change, type Deployment } from "../api/deployments";
import { useEventStream } from "../api/events";
import { ErrorBox, Loading, StatusBadge } from "../components/Status";
import { formatTime } from "../components/format";
import { Actions } from "../deployments/Actions";
import { roleOf, weightPercent } from "../deployments/roles";
import { StatsTable } from "../deployments/StatsTable";
import { paths } from "../routes";

/** The deployment's own events: what changes its state, roles and split. */
const DEPLOYMENT_EVENTS = [
  "deployment.created", "deployment.variant_added", "deployment.variant_removed", "deployment.traffic_set",
  "deployment.plan_set", "deployment.guardrails_set", "deployment.step_advanced", "deployment.guardrail_tripped",
  "deployment.rolled_back", "deployment.promoted", "deployment.paused", "deployment.resumed", "deployment.deleted",
];
/** What its replicas served (a batch every 250 ms per replica) and feedback on it. */
const TRAFFIC_EVENTS = ["inference.recorded", "feedback.recorded"];
/** The statistics are fetched again at most this often while traffic events arrive. */
const STATS_REFRESH_MS = 1000;

/** One deployment: variants with weights and roles, live per-variant statistics, canary
 * progress, guardrails, the history of its events (why it changed), and promote / roll
 * back / pause. Refreshed by the event stream, no polling. URL: /deployments/NAME */
export function DeploymentPage() {
  const { name = "" } = useParams();
  const [deployment, setDeployment] = useState<Deployment | null>(null);
  const [history, setHistory] = useState<Change[]>([]);
  const [analysis, setAnalysis] = useState<Analysis | null>(null);
  const [error, setError] = useState<unknown>(null);
  const timer = useRef<number | null>(null);

  const loadStats = useCallback(() => {
    getAnalysis(name).then(setAnalysis).catch(setError);
  }, [name]);
  const load = useCallback(() => {
    getDeployment(name).then(setDeployment).catch(setError);
    getHistory(name).then(setHistory).catch(setError);
    loadStats();
  }, [name, loadStats]);
  useEffect(load, [load]);
  useEffect(() => () => {
    if (timer.current !== null) window.clearTimeout(timer.current);
  }, []);

  useEventStream(
    [...DEPLOYMENT_EVENTS, ...TRAFFIC_EVENTS],
    (e) => {
      if (e.stream === `deployment:${name}`) load();
      else if (e.stream === `traffic:${name}` && timer.current === null) {
        timer.current = window.setTimeout(() => {
          timer.current = null;
          loadStats();
        }, STATS_REFRESH_MS);
      }
    },
    deployment !== null,
  );

  if (error) return <ErrorBox error={error} />;
  if (!deployment) return <Loading what="deployment" />;
  const d = deployment;
  return (
    <article aria-labelledby="deployment-title">
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to={paths.deployments()}>Deployments</Link> / <span>{name}</span>
      </nav>
      <h1 id="deployment-title">
        Deployment {name} <StatusBadge status={d.status} />
      </h1>
      {d.description && <p>{d.description}</p>}
      <dl className="facts">
        <dt>Last decision</dt>
        <dd>
          {d.last_action}
          {d.last_reason ? `: ${d.last_reason}` : ""} ({formatTime(d.updated)})
        </dd>
        <dt>Routing key</dt>
        <dd className="mono">{d.key_header}</dd>
      </dl>
      <Actions deployment={d} onDone={load} />
      <h2>Variants</h2>
      <table className="grid" aria-label="Variants">
        <thead>
          <tr>
            <th scope="col">Variant</th>
            <th scope="col">Role</th>
            <th scope="col">Weight</th>
            <th scope="col">Model version</th>
            <th scope="col">Bundle</th>
          </tr>
        </thead>
        <tbody>
          {d.variants.map((v) => (
            <tr key={v.name} aria-label={`Variant ${v.name}`}>
              <th scope="row">{v.name}</th>
              <td aria-label="Role">{roleOf(d, v)}</td>
              <td>{v.shadow ? "copy of every request" : weightPercent(d, v.name)}</td>
              <td>
                <Link to={paths.modelVersion(v.model, v.version)}>
                  {v.model} v{v.version}
                </Link>
              </td>
              <td className="mono">{v.bundle_id ?? "pyfunc"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Live statistics</h2>
      {analysis ? <StatsTable analysis={analysis} /> : <Loading what="statistics" />}
      <Canary deployment={d} />
      <h2>Guardrails</h2>
      {d.guardrails.length === 0 ? (
        <p className="muted">None: nothing rolls traffic back automatically.</p>
      ) : (
        <ul aria-label="Guardrails">
          {d.guardrails.map((g, i) => (
            <li key={i}>
              {g.metric} {g.bound === "max" ? "≤" : "≥"} {g.threshold}
              {g.relative ? "× the baseline's" : ""} (judged after {g.min_samples} samples)
            </li>
          ))}
        </ul>
      )}
      <h2>History</h2>
      <table className="grid" aria-label="History">
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Time</th>
            <th scope="col">Event</th>
            <th scope="col">By</th>
            <th scope="col">Why / what</th>
          </tr>
        </thead>
        <tbody>
          {[...history].reverse().map((c) => (
            <tr key={c.seq}>
              <td>{c.seq}</td>
              <td>{formatTime(c.time)}</td>
              <td>{c.type.replace(/^deployment\./, "")}</td>
              <td>{c.actor}</td>
              <td className="mono">{typeof c.summary.reason === "string" && c.summary.reason ? c.summary.reason : compact(c.summary)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </article>
  );
}

function compact(summary: Record<string, unknown>): string {
  const text = JSON.stringify(summary);
  return text.length > 160 ? `${text.slice(0, 157)}…` : text;
}

function Canary({ deployment: d }: { deployment: Deployment }) {
  if (!d.plan) return null;
  const steps = d.plan.steps;
  const at = d.step ?? -1;
  return (
    <section aria-labelledby="canary-title">
      <h2 id="canary-title">Canary</h2>
      <p>
        Candidate <strong>{d.plan.candidate}</strong>:{" "}
        {at >= 0 ? `step ${at + 1} of ${steps.length}` : "not running"}
        {d.step_started && at >= 0 ? ` since ${formatTime(d.step_started)}` : ""}
      </p>
      <progress max={steps.length} value={at + 1} aria-label="Canary progress">
        {at + 1} of {steps.length}
      </progress>
      <ol className="canary-steps">
        {steps.map((s, i) => (
          <li key={i} className={i === at ? "current" : i < at ? "done" : undefined} aria-current={i === at ? "step" : undefined}>
            {s.weight}% of traffic; next after {s.min_requests} requests and {s.min_duration_s} s
          </li>
        ))}
      </ol>
    </section>
  );
}
