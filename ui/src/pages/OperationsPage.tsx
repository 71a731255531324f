import { useEffect, useRef, useState } from "react";
import { Link } from "react-router-dom";
import { get } from "../api/client";
import type { Operations, RequestCounts } from "../api/types";
import { ErrorBox, Loading, StatusBadge } from "../components/Status";
import { formatTime } from "../components/format";
import { paths } from "../routes";

export const REFRESH_MS = 5000;

interface RouteRate {
  route: string;
  total: number;
  clientErrors: number;
  serverErrors: number;
  perSecond: number | null;
  errorsPerSecond: number | null;
}

/** Per route: requests and errors so far, and their rates between the last two reads of
 * the gateway's request counter. */
function rates(now: RequestCounts, before: RequestCounts | null): RouteRate[] {
  const byRoute = new Map<string, RouteRate>();
  const seconds = before ? (now.time - before.time) / 1000 : 0;
  const old = new Map(before?.requests.map((r) => [`${r.route} ${r.method} ${r.status}`, r.count]) ?? []);
  for (const r of now.requests) {
    const route = `${r.method} ${r.route}`;
    const row = byRoute.get(route) ?? { route, total: 0, clientErrors: 0, serverErrors: 0, perSecond: seconds > 0 ? 0 : null, errorsPerSecond: seconds > 0 ? 0 : null };
    const code = Number(r.status);
    row.total += r.count;
    if (code >= 400 && code < 500) row.clientErrors += r.count;
    if (code >= 500) row.serverErrors += r.count;
    if (seconds > 0) {
      const delta = (r.count - (old.get(`${r.route} ${r.method} ${r.status}`) ?? 0)) / seconds;
      row.perSecond! += delta;
      if (code >= 500) row.errorsPerSecond! += delta;
    }
    byRoute.set(route, row);
  }
  return [...byRoute.values()].sort((a, b) => b.total - a.total);
}

const rate = (v: number | null) => (v === null ? "…" : v.toFixed(2));
const age = (s: number | null) => (s === null ? "" : s < 60 ? `${s.toFixed(1)} s` : `${(s / 60).toFixed(1)} min`);

/** The pipeline at a glance (GET /api/v1/operations and the gateway's request counts),
 * read again every few seconds: projector lag per partition, dead letters with their
 * reasons, webhook backlog, jobs by status, deployments, model servers' readiness, request
 * rates and errors. Admins
 * only when auth is on. URL: /operations */
export function OperationsPage() {
  const [ops, setOps] = useState<Operations | null>(null);
  const [routes, setRoutes] = useState<RouteRate[]>([]);
  const [error, setError] = useState<unknown>(null);
  const previous = useRef<RequestCounts | null>(null);

  useEffect(() => {
    let stop = false;
    let timer = 0;
    const read = async () => {
      try {
        const [o, counts] = await Promise.all([get<Operations>("/operations"), get<RequestCounts>("/operations/requests")]);
        if (stop) return;
        setOps(o);
        setRoutes(rates(counts, previous.current));
        previous.current = counts;
        setError(null);
      } catch (e) {
        if (!stop) setError(e);
      }
      if (!stop) timer = window.setTimeout(read, REFRESH_MS);
    };
    void read();
    return () => {
      stop = true;
      window.clearTimeout(timer);
    };
  }, []);

  if (!ops) return error ? <ErrorBox error={error} /> : <Loading what="the operations summary" />;
  const behind = ops.projector.reduce((n, p) => n + p.events_behind, 0);
  return (
    <section aria-labelledby="ops-title">
      <h1 id="ops-title">Operations</h1>
      <p className="muted" aria-live="polite">
        As of {formatTime(ops.time)} · refreshed every {REFRESH_MS / 1000} s
      </p>
      <ErrorBox error={error} />
      <div className="ops-grid">
        <section aria-labelledby="ops-projector">
          <h2 id="ops-projector">Projector lag {behind === 0 ? <span className="badge status-finished">up to date</span> : <span className="badge status-failed">{behind} behind</span>}</h2>
          <table className="grid" aria-label="Projector lag per partition">
            <thead>
              <tr><th scope="col">Partition</th><th scope="col">Head</th><th scope="col">Applied</th><th scope="col">Events behind</th><th scope="col">Seconds behind</th></tr>
            </thead>
            <tbody>
              {ops.projector.map((p) => (
                <tr key={p.partition}>
                  <td>{p.partition || "(single)"}</td><td>{p.head}</td><td>{p.applied ?? "—"}</td><td>{p.events_behind}</td><td>{p.seconds_behind ?? "?"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
        <section aria-labelledby="ops-jobs">
          <h2 id="ops-jobs">Jobs</h2>
          {Object.keys(ops.jobs).length === 0 ? (
            <p className="muted">No jobs.</p>
          ) : (
            <ul className="plain" aria-label="Jobs by status">
              {Object.entries(ops.jobs).map(([status, n]) => (
                <li key={status}>
                  <Link to={`${paths.jobs()}?status=${status}`}><StatusBadge status={status} /></Link> {n}
                </li>
              ))}
            </ul>
          )}
        </section>
      </div>
      <section aria-labelledby="ops-dead">
        <h2 id="ops-dead">Dead letters {ops.dead_letters.count > 0 ? <span className="badge status-failed">{ops.dead_letters.count}</span> : <span className="badge">0</span>}</h2>
        {ops.dead_letters.latest.length > 0 && (
          <table className="grid wide" aria-label="Latest dead letters">
            <thead>
              <tr><th scope="col">Time</th><th scope="col">Position</th><th scope="col">Type</th><th scope="col">Stream</th><th scope="col">Kind</th><th scope="col">Reason</th></tr>
            </thead>
            <tbody>
              {ops.dead_letters.latest.map((d) => (
                <tr key={`${d.partition}/${d.position}`}>
                  <td className="nowrap">{formatTime(d.time)}</td><td>{d.partition ? `${d.partition}/` : ""}{d.position}</td><td className="mono">{d.type}</td><td className="mono">{d.stream}</td><td>{d.kind}</td><td className="reason">{d.reason}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section aria-labelledby="ops-webhooks">
        <h2 id="ops-webhooks">Webhook backlog</h2>
        {ops.webhooks.length === 0 ? (
          <p className="muted">No webhooks.</p>
        ) : (
          <table className="grid wide" aria-label="Webhook backlog">
            <thead>
              <tr><th scope="col">Webhook</th><th scope="col">Active</th><th scope="col">Waiting</th><th scope="col">Oldest waiting</th><th scope="col">Attempts</th><th scope="col">Last error</th><th scope="col">Next attempt</th></tr>
            </thead>
            <tbody>
              {ops.webhooks.map((w) => (
                <tr key={w.name}>
                  <td>{w.name}</td><td>{w.active ? "yes" : "no"}</td><td>{w.pending}{w.pending_capped ? "+" : ""}</td><td>{age(w.oldest_pending_age_s)}</td><td>{w.attempts}</td><td className="reason">{w.last_error ?? ""}</td><td>{formatTime(w.next_attempt_time)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section aria-labelledby="ops-deployments">
        <h2 id="ops-deployments">Deployments</h2>
        {ops.deployments.length === 0 ? (
          <p className="muted">No deployments.</p>
        ) : (
          <table className="grid wide" aria-label="Deployments">
            <thead>
              <tr><th scope="col">Deployment</th><th scope="col">Status</th><th scope="col">Baseline</th><th scope="col">Last action</th><th scope="col">Why</th><th scope="col">Updated</th></tr>
            </thead>
            <tbody>
              {ops.deployments.map((d) => (
                <tr key={d.name}>
                  <td>{d.name}</td><td><StatusBadge status={d.status} /></td><td>{d.baseline}</td><td>{d.last_action}</td><td>{d.last_reason}</td><td>{formatTime(d.updated)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section aria-labelledby="ops-servers">
        <h2 id="ops-servers">
          Model servers{" "}
          {ops.model_servers.some((m) => !m.ready) && (
            <span className="badge status-failed">{ops.model_servers.filter((m) => !m.ready).length} not ready</span>
          )}
        </h2>
        {ops.model_servers.length === 0 ? (
          <p className="muted">
            No model servers known: list them in <code>LEDGERFLOW_MODEL_SERVERS</code> (base URLs, comma-separated) to
            see their readiness here.
          </p>
        ) : (
          <table className="grid wide" aria-label="Model servers">
            <thead>
              <tr><th scope="col">Server</th><th scope="col">Ready</th><th scope="col">What it serves</th><th scope="col">Probe</th><th scope="col">Why not ready</th></tr>
            </thead>
            <tbody>
              {ops.model_servers.map((m) => (
                <tr key={m.url}>
                  <td>{m.url}</td>
                  <td><span className={`badge ${m.ready ? "status-finished" : "status-failed"}`}>{m.ready ? "ready" : "not ready"}</span></td>
                  <td>
                    {m.deployments.length > 0
                      ? m.deployments.map((d) => `${d.name} (${d.serving.join(", ")})${d.ready ? "" : " loading"}`).join("; ")
                      : (m.server ?? "")}
                  </td>
                  <td>{m.latency_ms === null ? "" : `${m.latency_ms} ms`}</td>
                  <td>{m.error ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section aria-labelledby="ops-requests">
        <h2 id="ops-requests">Gateway requests</h2>
        <p className="muted">From the gateway's Prometheus request counter; rates over the last {REFRESH_MS / 1000} s.</p>
        <table className="grid wide" aria-label="Gateway requests by route">
          <thead>
            <tr><th scope="col">Route</th><th scope="col">Requests</th><th scope="col">Requests/s</th><th scope="col">4xx</th><th scope="col">5xx</th><th scope="col">5xx/s</th></tr>
          </thead>
          <tbody>
            {routes.slice(0, 20).map((r) => (
              <tr key={r.route} className={r.serverErrors ? "differs" : undefined}>
                <td className="mono">{r.route}</td><td>{r.total}</td><td>{rate(r.perSecond)}</td><td>{r.clientErrors}</td><td>{r.serverErrors}</td><td>{rate(r.errorsPerSecond)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </section>
  );
}
