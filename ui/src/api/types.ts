// Wire shapes of the REST API (see /docs on a running gateway).

export interface Experiment {
  experiment_id: string;
  name: string;
  artifact_location: string;
  lifecycle_stage: "active" | "deleted";
  tags: Record<string, string>;
  creation_time: number;
  last_update_time: number;
}

export interface RunInfo {
  run_id: string;
  experiment_id: string;
  run_name: string | null;
  user_id: string;
  status: string;
  start_time: number;
  end_time: number | null;
  artifact_uri: string;
  lifecycle_stage: string;
}

export interface RunData {
  metrics: Record<string, number | string>;
  params: Record<string, string>;
  tags: Record<string, string>;
}

export interface Run {
  info: RunInfo;
  data: RunData;
}

export interface RunPage {
  runs: Run[];
  next_page_token: string | null;
}

export interface MetricHistory {
  key: string;
  steps: number[];
  timestamps: number[];
  values: (number | string)[];
}

export interface FileInfo {
  path: string;
  is_dir: boolean;
  file_size: number | null;
}

export interface ModelVersion {
  name: string;
  version: number;
  current_stage: string;
  source: string;
  run_id: string | null;
  status: string;
  aliases: string[];
  creation_timestamp: number;
  description: string;
}

export const PARENT_TAG = "mlflow.parentRunId";
export const SOURCE_TAG = "mlflow.source.name";

export interface Job {
  job_id: string;
  name: string;
  kind: string;
  entry_point: string;
  status: string;
  run_id: string;
  experiment_id: string;
  runtime: string;
  params: Record<string, string>;
  cpus: number;
  gpus: number;
  memory: number | null;
  num_workers: number;
  host: string;
  error: string | null;
  submitted_time: number;
  start_time: number | null;
  end_time: number | null;
}

export interface JobLog {
  text: string;
  offset: number;
  source: string;
  done: boolean;
}

export const JOB_EVENTS = ["job.submitted", "job.started", "job.finished", "job.failed", "job.cancelled"];

export interface AuditEntry {
  event_id: string;
  time: number;
  type: string;
  stream: string;
  actor: string;
  token_id: string | null;
  summary: string;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  resource: string | null;
  events: number;
  detail: Record<string, unknown> | null;
}

export interface AuditPage {
  entries: AuditEntry[];
  next_page_token: string | null;
}

export interface Operations {
  time: number;
  projector: { partition: string; head: number; applied: number | null; events_behind: number; seconds_behind: number | null }[];
  dead_letters: {
    count: number;
    latest: { position: number; partition: string; event_id: string; type: string; stream: string; kind: string; reason: string; time: number }[];
  };
  webhooks: {
    name: string;
    active: boolean;
    pending: number;
    pending_capped: boolean;
    oldest_pending_age_s: number | null;
    attempts: number;
    last_error: string | null;
    next_attempt_time: number | null;
  }[];
  jobs: Record<string, number>;
  deployments: { name: string; status: string; baseline: string; last_action: string; last_reason: string; updated: number }[];
  model_servers: ModelServerHealth[];
}

/** A model server's readiness: the replica `ledgerflow server` hosts ("(this server)") or a
 * server listed in LEDGERFLOW_MODEL_SERVERS, probed. */
export interface ModelServerHealth {
  url: string;
  ready: boolean;
  server: string | null;
  replica: string | null;
  deployments: { name: string; ready: boolean; serving: string[] }[];
  latency_ms: number | null;
  error: string | null;
}

export interface RequestCounts {
  time: number;
  requests: { route: string; method: string; status: string; count: number }[];
}
