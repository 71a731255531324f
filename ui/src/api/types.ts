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
