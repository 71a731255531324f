import { useCallback, useEffect, useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { get, query } from "../api/client";
import { useEventStream } from "../api/events";
import { JOB_EVENTS, type Job } from "../api/types";
import { ErrorBox, Loading, StatusBadge } from "../components/Status";
import { formatDuration, formatTime } from "../components/format";
import { paths } from "../routes";
import { useLatest } from "../api/latest";

const STATUSES = ["SUBMITTED", "RUNNING", "FINISHED", "FAILED", "CANCELLED"];

/** Training jobs (Ray or inline), newest first, with their status kept current by the
 * job.* events. URL: /jobs?status=RUNNING */
export function JobsPage() {
  const [params, setParams] = useSearchParams();
  const status = params.get("status") ?? "";
  const [jobs, setJobs] = useState<Job[] | null>(null);
  const [error, setError] = useState<unknown>(null);

  const latest = useLatest();
  const load = useCallback(() => {
    latest(get<Job[]>("/jobs" + query({ status: status || undefined, max_results: 500 })))
      .then((j) => (setJobs(j), setError(null)))
      .catch(setError);
  }, [status, latest]);
  useEffect(load, [load]);
  useEventStream(JOB_EVENTS, load);

  return (
    <section aria-labelledby="jobs-title">
      <h1 id="jobs-title">Jobs</h1>
      <div className="toolbar">
        <label>
          Status
          <select value={status} onChange={(e) => setParams(e.target.value ? { status: e.target.value } : {}, { replace: true })}>
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
      </div>
      <ErrorBox error={error} />
      {!jobs && !error && <Loading what="jobs" />}
      {jobs && jobs.length === 0 && <p className="muted">No jobs{status ? ` with status ${status}` : ""}.</p>}
      {jobs && jobs.length > 0 && (
        <table className="grid wide" aria-label="Jobs">
          <thead>
            <tr>
              <th scope="col">Job</th>
              <th scope="col">Status</th>
              <th scope="col">Kind</th>
              <th scope="col">Runtime</th>
              <th scope="col">Submitted</th>
              <th scope="col">Duration</th>
              <th scope="col">Run</th>
            </tr>
          </thead>
          <tbody>
            {jobs.map((j) => (
              <tr key={j.job_id}>
                <td>
                  <Link to={paths.job(j.job_id)}>{j.name || j.job_id}</Link>
                </td>
                <td>
                  <StatusBadge status={j.status} />
                </td>
                <td>{j.kind}</td>
                <td>{j.runtime}</td>
                <td>{formatTime(j.submitted_time)}</td>
                <td>{j.start_time ? formatDuration(j.start_time, j.end_time) : ""}</td>
                <td>
                  <Link to={paths.run(j.run_id)} className="mono">
                    {j.run_id.slice(0, 8)}
                  </Link>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
