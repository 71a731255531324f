import { useCallback, useEffect, useRef, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { get } from "../api/client";
import { useEventStream } from "../api/events";
import { JOB_EVENTS, type Job, type JobLog } from "../api/types";
import { ErrorBox, Loading, StatusBadge } from "../components/Status";
import { formatDuration, formatTime } from "../components/format";
import { paths } from "../routes";

const FOLLOW_MS = 1000;

/** One job: what it runs, its status, the run it produced and its output, followed while
 * the job runs (read again from the last offset every second). URL: /jobs/ID */
export function JobPage() {
  const { jobId = "" } = useParams();
  const [job, setJob] = useState<Job | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [log, setLog] = useState("");
  const [logDone, setLogDone] = useState(false);
  const [follow, setFollow] = useState(true);
  const offset = useRef(0);
  const pre = useRef<HTMLPreElement>(null);

  const load = useCallback(() => {
    get<Job>(`/jobs/${jobId}`).then(setJob).catch(setError);
  }, [jobId]);
  useEffect(load, [load]);
  useEventStream(JOB_EVENTS, (e) => e.stream === `job:${jobId}` && load());

  useEffect(() => {
    offset.current = 0;
    setLog("");
    setLogDone(false);
    let stop = false;
    let timer = 0;
    const read = async () => {
      try {
        const chunk = await get<JobLog>(`/jobs/${jobId}/log?offset=${offset.current}`);
        if (stop) return;
        offset.current = chunk.offset;
        if (chunk.text) setLog((l) => l + chunk.text);
        if (chunk.done && !chunk.text) {
          setLogDone(true);
          return;
        }
      } catch (e) {
        if (!stop) setError(e);
        return;
      }
      timer = window.setTimeout(read, FOLLOW_MS);
    };
    void read();
    return () => {
      stop = true;
      window.clearTimeout(timer);
    };
  }, [jobId]);

  useEffect(() => {
    if (follow && pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [log, follow]);

  if (error) return <ErrorBox error={error} />;
  if (!job) return <Loading what="job" />;
  return (
    <section aria-labelledby="job-title">
      <p className="crumbs">
        <Link to={paths.jobs()}>Jobs</Link> /
      </p>
      <h1 id="job-title">
        Job {job.name || job.job_id} <StatusBadge status={job.status} />
      </h1>
      <dl className="facts">
        <dt>Job id</dt>
        <dd className="mono">{job.job_id}</dd>
        <dt>Runs</dt>
        <dd className="mono">{job.entry_point}</dd>
        <dt>Kind · runtime</dt>
        <dd>
          {job.kind} · {job.runtime}
          {job.num_workers > 1 ? ` · ${job.num_workers} workers` : ""} · {job.cpus} CPU{job.gpus ? ` · ${job.gpus} GPU` : ""}
        </dd>
        <dt>Run</dt>
        <dd>
          <Link to={paths.run(job.run_id)}>{job.run_id}</Link>
        </dd>
        <dt>Submitted</dt>
        <dd>{formatTime(job.submitted_time)}</dd>
        <dt>Started</dt>
        <dd>{formatTime(job.start_time)}{job.host ? ` on ${job.host}` : ""}</dd>
        <dt>Duration</dt>
        <dd>{job.start_time ? formatDuration(job.start_time, job.end_time) : ""}</dd>
        {Object.keys(job.params).length > 0 && (
          <>
            <dt>Params</dt>
            <dd className="mono">{Object.entries(job.params).map(([k, v]) => `${k}=${v}`).join(" ")}</dd>
          </>
        )}
        {job.error && (
          <>
            <dt>Error</dt>
            <dd className="error">{job.error}</dd>
          </>
        )}
      </dl>
      <h2 id="log-title">Log</h2>
      <div className="toolbar">
        <label>
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} />
          Follow the log
        </label>
        <span className="muted" aria-live="polite">
          {logDone ? "complete" : "following…"}
        </span>
      </div>
      <pre ref={pre} className="code job-log" aria-labelledby="log-title" tabIndex={0}>
        {log || (logDone ? "(no output)" : "")}
      </pre>
    </section>
  );
}
