// The runs of one or several experiments as the table shows them: loaded a page at a time
// through the search API's cursor, kept up to date by the event stream (new runs, metric
// values, params, tags, ends) without reloading or polling.
import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError, num, post } from "../api/client";
import { useEventStream, type LogEvent } from "../api/events";
import type { Run, RunPage } from "../api/types";

/** The first page is small so the first rows show at once; later pages are larger. */
export const FIRST_PAGE = 100;
export const PAGE_SIZE = 1000;
const LIVE_TYPES = ["run.started", "run.metrics_logged", "run.params_logged", "run.tags_set", "run.finished"];

export interface RunList {
  runs: Run[];
  /** Bumped whenever a run changes in place (live updates), to redraw visible rows. */
  version: number;
  loading: boolean;
  error: ApiError | Error | null;
  hasMore: boolean;
  loadMore: () => void;
}

export function useRunList(experimentIds: string[], filter: string, order: string | null): RunList {
  const [runs, setRuns] = useState<Run[]>([]);
  const [version, setVersion] = useState(0);
  const [token, setToken] = useState<string | null>(null);
  const [hasMore, setHasMore] = useState(false);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<ApiError | Error | null>(null);
  const byId = useRef(new Map<string, Run>());
  const generation = useRef(0);
  const ids = experimentIds.join(",");

  const fetchPage = useCallback(
    async (pageToken: string | null, gen: number) => {
      setLoading(true);
      try {
        const page = await post<RunPage>("/runs/search", {
          experiment_ids: ids.split(","),
          filter: filter || null,
          order_by: order ? [order] : null,
          max_results: pageToken ? PAGE_SIZE : FIRST_PAGE,
          page_token: pageToken,
        });
        if (gen !== generation.current) return;
        const fresh = page.runs.filter((r) => !byId.current.has(r.info.run_id));
        for (const r of fresh) byId.current.set(r.info.run_id, r);
        setRuns((old) => (pageToken ? [...old, ...fresh] : fresh));
        setToken(page.next_page_token);
        setHasMore(page.next_page_token !== null);
        setError(null);
      } catch (e) {
        if (gen === generation.current) {
          setError(e as Error);
          if (!pageToken) setRuns([]);
          setHasMore(false);
        }
      } finally {
        if (gen === generation.current) setLoading(false);
      }
    },
    [ids, filter, order],
  );

  useEffect(() => {
    generation.current += 1;
    byId.current = new Map();
    setRuns([]);
    void fetchPage(null, generation.current);
  }, [fetchPage]);

  const loadMore = useCallback(() => {
    if (!loading && hasMore) void fetchPage(token, generation.current);
  }, [loading, hasMore, token, fetchPage]);

  // Live updates arrive in bursts (a metric batch per flush): change the runs in place and
  // redraw at most once per animation frame.
  const pending = useRef(false);
  const redraw = () => {
    if (pending.current) return;
    pending.current = true;
    requestAnimationFrame(() => {
      pending.current = false;
      setVersion((v) => v + 1);
    });
  };

  const addNewRun = async (e: LogEvent) => {
    const d = e.data as Record<string, unknown>;
    const gen = generation.current;
    const runId = String(d.run_id);
    let run: Run | undefined = {
      info: {
        run_id: runId,
        experiment_id: String(d.experiment_id),
        run_name: (d.run_name as string) ?? null,
        user_id: String(d.user_id ?? ""),
        status: "RUNNING",
        start_time: Number(d.start_time ?? e.time),
        end_time: null,
        artifact_uri: String(d.artifact_uri ?? ""),
        lifecycle_stage: "active",
      },
      data: { metrics: {}, params: {}, tags: { ...((d.tags as Record<string, string>) ?? {}) } },
    };
    if (d.parent_run_id) run.data.tags["mlflow.parentRunId"] = String(d.parent_run_id);
    if (filter) {
      // Only the server knows whether it matches the filter: ask for exactly this run.
      const page = await post<RunPage>("/runs/search", {
        experiment_ids: ids.split(","),
        filter: `(${filter}) and attributes.run_id = '${runId}'`,
        max_results: 1,
      }).catch(() => null);
      run = page?.runs[0];
    }
    if (!run || gen !== generation.current || byId.current.has(runId)) return;
    byId.current.set(runId, run);
    setRuns((old) => (order && !order.startsWith("start_time DESC") ? [...old, run!] : [run!, ...old]));
  };

  useEventStream(LIVE_TYPES, (e) => {
    const d = e.data as Record<string, unknown>;
    if (e.type === "run.started") {
      if (ids.split(",").includes(String(d.experiment_id))) void addNewRun(e);
      return;
    }
    const run = byId.current.get(String(d.run_id));
    if (!run) return;
    if (e.type === "run.metrics_logged") {
      const latest = new Map<string, [number, number, number]>(); // key -> step, ts, value
      for (const [key, value, ts, step] of d.points as [string, number | string, number, number][]) {
        const seen = latest.get(key);
        if (!seen || step > seen[0] || (step === seen[0] && ts >= seen[1])) latest.set(key, [step, ts, num(value)]);
      }
      for (const [key, [, , value]] of latest) run.data.metrics[key] = value;
    } else if (e.type === "run.params_logged") {
      Object.assign(run.data.params, d.params);
    } else if (e.type === "run.tags_set") {
      Object.assign(run.data.tags, d.tags);
    } else if (e.type === "run.finished") {
      run.info.status = String(d.status ?? "FINISHED");
      run.info.end_time = Number(d.end_time ?? e.time);
    }
    redraw();
  });

  return { runs, version, loading, error, hasMore, loadMore };
}
