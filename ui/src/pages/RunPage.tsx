import { useEffect, useState } from "react";
import { Link, NavLink, useParams } from "react-router-dom";
import { get, post, query } from "../api/client";
import { useEventStream } from "../api/events";
import { PARENT_TAG, SOURCE_TAG, type Experiment, type ModelVersion, type Run, type RunPage as Page } from "../api/types";
import { ArtifactBrowser } from "../artifacts/ArtifactBrowser";
import { MetricCharts } from "../charts/MetricCharts";
import { ErrorBox, Loading, StatusBadge } from "../components/Status";
import { formatDuration, formatTime, formatValue } from "../components/format";
import { paths } from "../routes";

const TABS = [
  { tab: "", label: "Overview" },
  { tab: "metrics", label: "Metrics" },
  { tab: "artifacts", label: "Artifacts" },
  { tab: "models", label: "Models" },
];
const JOB_TAG = "ledgerflow.job_id";

/** One run. URLs: /runs/ID (overview, params, tags), /runs/ID/metrics,
 * /runs/ID/artifacts?path=…, /runs/ID/models. */
export function RunPage() {
  const { runId = "", tab = "" } = useParams();
  const [run, setRun] = useState<Run | null>(null);
  const [experiment, setExperiment] = useState<Experiment | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    setRun(null);
    get<Run>(`/runs/${runId}`)
      .then((r) => {
        setRun(r);
        return get<Experiment>(`/experiments/${r.info.experiment_id}`).then(setExperiment);
      })
      .catch(setError);
  }, [runId]);

  useEventStream(
    ["run.finished", "run.tags_set", "run.params_logged"],
    (e) => {
      if ((e.data as { run_id?: string }).run_id === runId) void get<Run>(`/runs/${runId}`).then(setRun);
    },
    run !== null,
  );

  if (error) return <ErrorBox error={error} />;
  if (!run) return <Loading what="run" />;
  const name = run.info.run_name ?? runId;
  return (
    <article aria-labelledby="run-title">
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to={paths.experiments()}>Experiments</Link> /{" "}
        <Link to={paths.runs([run.info.experiment_id])}>{experiment?.name ?? run.info.experiment_id}</Link> /{" "}
        <span>{name}</span>
      </nav>
      <h1 id="run-title">
        Run {name} <StatusBadge status={run.info.status} />
      </h1>
      <nav className="tabs" aria-label="Run sections">
        {TABS.map((t) => (
          <NavLink key={t.tab} to={paths.run(runId, t.tab)} end>
            {t.label}
          </NavLink>
        ))}
      </nav>
      {tab === "" && <Overview run={run} />}
      {tab === "metrics" && (
        <MetricCharts runs={[{ runId, runName: name }]} keys={Object.keys(run.data.metrics).sort()} />
      )}
      {tab === "artifacts" && <ArtifactBrowser runId={runId} />}
      {tab === "models" && <Models runId={runId} />}
    </article>
  );
}

function Overview({ run }: { run: Run }) {
  const info = run.info;
  const parent = run.data.tags[PARENT_TAG];
  const [children, setChildren] = useState<Run[]>([]);
  useEffect(() => {
    post<Page>("/runs/search", {
      experiment_ids: [info.experiment_id],
      filter: `tags.\`${PARENT_TAG}\` = '${info.run_id}'`,
      max_results: 200,
    })
      .then((p) => setChildren(p.runs))
      .catch(() => setChildren([]));
  }, [info.run_id, info.experiment_id]);
  const userTags = Object.entries(run.data.tags).filter(([k]) => !k.startsWith("mlflow."));
  return (
    <div className="overview">
      <dl className="facts">
        <dt>Run ID</dt>
        <dd className="mono">{info.run_id}</dd>
        <dt>Status</dt>
        <dd>{info.status}</dd>
        <dt>User</dt>
        <dd>{info.user_id}</dd>
        <dt>Started</dt>
        <dd>{formatTime(info.start_time)}</dd>
        <dt>Ended</dt>
        <dd>{formatTime(info.end_time) || "—"}</dd>
        <dt>Duration</dt>
        <dd>{formatDuration(info.start_time, info.end_time) || "—"}</dd>
        <dt>Source</dt>
        <dd className="mono">{run.data.tags[SOURCE_TAG] ?? "—"}</dd>
        <dt>Parent run</dt>
        <dd>{parent ? <Link to={paths.run(parent)}>{parent}</Link> : "—"}</dd>
        <dt>Nested runs</dt>
        <dd>
          {children.length === 0
            ? "—"
            : children.map((c, i) => (
                <span key={c.info.run_id}>
                  {i > 0 && ", "}
                  <Link to={paths.run(c.info.run_id)}>{c.info.run_name ?? c.info.run_id}</Link>
                </span>
              ))}
        </dd>
        <dt>Job</dt>
        <dd>
          {run.data.tags[JOB_TAG] ? (
            <span className="mono" title="ledgerflow jobs show ID prints its status and log">
              {run.data.tags[JOB_TAG]}
            </span>
          ) : (
            "—"
          )}
        </dd>
        <dt>Artifacts</dt>
        <dd className="mono">{info.artifact_uri}</dd>
      </dl>
      <div className="kv-tables">
        <KeyValues title="Parameters" entries={Object.entries(run.data.params)} />
        <KeyValues
          title="Metrics (latest)"
          entries={Object.entries(run.data.metrics).map(([k, v]) => [k, formatValue(v)])}
        />
        <KeyValues title="Tags" entries={userTags} />
      </div>
    </div>
  );
}

function KeyValues({ title, entries }: { title: string; entries: [string, string][] }) {
  return (
    <section aria-label={title}>
      <h2>{title}</h2>
      {entries.length === 0 ? (
        <p className="muted">None.</p>
      ) : (
        <table className="grid kv">
          <thead>
            <tr>
              <th scope="col">Key</th>
              <th scope="col">Value</th>
            </tr>
          </thead>
          <tbody>
            {entries
              .sort(([a], [b]) => a.localeCompare(b))
              .map(([k, v]) => (
                <tr key={k}>
                  <th scope="row">{k}</th>
                  <td>{v}</td>
                </tr>
              ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Models({ runId }: { runId: string }) {
  const [versions, setVersions] = useState<ModelVersion[] | null>(null);
  const [logged, setLogged] = useState<string[]>([]);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    post<{ model_versions: ModelVersion[] }>("/model-versions/search", { filter: `run_id = '${runId}'` })
      .then((r) => setVersions(r.model_versions))
      .catch(setError);
    // a logged model is a folder with an MLmodel file
    get<{ path: string }[]>(`/runs/${runId}/artifacts/entries`)
      .then((files) => setLogged(files.filter((f) => /(^|\/)MLmodel$/.test(f.path)).map((f) => f.path.replace(/\/?MLmodel$/, ""))))
      .catch(() => setLogged([]));
  }, [runId]);
  return (
    <div>
      <ErrorBox error={error} />
      <h2>Models logged by this run</h2>
      {logged.length === 0 ? (
        <p className="muted">None.</p>
      ) : (
        <ul>
          {logged.map((p) => (
            <li key={p}>
              <Link to={`${paths.run(runId, "artifacts")}${query({ path: `${p ? p + "/" : ""}MLmodel` })}`}>{p || "(root)"}</Link>{" "}
              <span className="mono muted">runs:/{runId}/{p}</span>
            </li>
          ))}
        </ul>
      )}
      <h2>Registered versions</h2>
      {versions === null ? (
        <Loading what="model versions" />
      ) : versions.length === 0 ? (
        <p className="muted">No registered model version comes from this run.</p>
      ) : (
        <table className="grid" aria-label="Registered versions">
          <thead>
            <tr>
              <th scope="col">Model</th>
              <th scope="col">Version</th>
              <th scope="col">Aliases</th>
              <th scope="col">Stage</th>
              <th scope="col">Status</th>
              <th scope="col">Registered</th>
            </tr>
          </thead>
          <tbody>
            {versions.map((v) => (
              <tr key={`${v.name}/${v.version}`}>
                <td>{v.name}</td>
                <td>{v.version}</td>
                <td>{v.aliases.map((a) => <span key={a} className="badge">@{a}</span>)}</td>
                <td>{v.current_stage}</td>
                <td>{v.status}</td>
                <td>{formatTime(v.creation_timestamp)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
