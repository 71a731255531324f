import { FormEvent, useCallback, useEffect, useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";
import { del, get, patch, post, query } from "../api/client";
import type { Experiment } from "../api/types";
import { ErrorBox, Loading } from "../components/Status";
import { formatTime } from "../components/format";
import { paths } from "../routes";
import { useLatest } from "../api/latest";

type View = "ACTIVE_ONLY" | "DELETED_ONLY";

function likeFilter(text: string): string | undefined {
  const t = text.trim();
  return t ? `name LIKE '%${t.replace(/'/g, "''")}%'` : undefined;
}

/** Experiments: list, search by name, create, rename, delete and restore; choose one or
 * several to open their runs. URL: /experiments?q=NAME&view=DELETED_ONLY */
export function ExperimentsPage() {
  const [params, setParams] = useSearchParams();
  const search = params.get("q") ?? "";
  const view = (params.get("view") as View) ?? "ACTIVE_ONLY";
  const [experiments, setExperiments] = useState<Experiment[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [chosen, setChosen] = useState<Set<string>>(new Set());
  const navigate = useNavigate();

  const latest = useLatest();
  const load = useCallback(async () => {
    try {
      const found = await latest(
        get<Experiment[]>("/experiments" + query({ view_type: view, filter: likeFilter(search), order_by: "name" })),
      );
      setExperiments(found);
      setError(null);
    } catch (e) {
      setError(e);
    }
  }, [search, view, latest]);

  useEffect(() => {
    void load();
  }, [load]);

  const act = async (what: () => Promise<unknown>) => {
    try {
      await what();
      await load();
    } catch (e) {
      setError(e);
    }
  };

  const setParam = (key: string, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
  };

  const toggle = (id: string) => {
    const next = new Set(chosen);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setChosen(next);
  };

  return (
    <section aria-labelledby="experiments-title">
      <h1 id="experiments-title">Experiments</h1>
      <div className="toolbar">
        <label>
          Search experiments
          <input
            type="search"
            value={search}
            placeholder="name contains…"
            onChange={(e) => setParam("q", e.target.value)}
          />
        </label>
        <label>
          Show
          <select value={view} onChange={(e) => setParam("view", e.target.value === "ACTIVE_ONLY" ? "" : e.target.value)}>
            <option value="ACTIVE_ONLY">active</option>
            <option value="DELETED_ONLY">deleted</option>
          </select>
        </label>
        <button
          type="button"
          disabled={chosen.size === 0}
          onClick={() => navigate(paths.runs([...chosen]))}
        >
          Open runs of {chosen.size || ""} selected
        </button>
      </div>
      <CreateExperiment onCreate={(name) => act(() => post("/experiments", { name }))} />
      <ErrorBox error={error} />
      {experiments === null ? (
        <Loading what="experiments" />
      ) : experiments.length === 0 ? (
        <p className="muted">No experiments{search ? ` matching “${search}”` : ""}.</p>
      ) : (
        <table className="grid experiments">
          <thead>
            <tr>
              <th scope="col">
                <span className="sr-only">Select</span>
              </th>
              <th scope="col">Name</th>
              <th scope="col">ID</th>
              <th scope="col">Created</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {experiments.map((x) => (
              <ExperimentRow
                key={x.experiment_id}
                experiment={x}
                chosen={chosen.has(x.experiment_id)}
                onToggle={() => toggle(x.experiment_id)}
                onRename={(name) => act(() => patch(`/experiments/${x.experiment_id}`, { name }))}
                onDelete={() => act(() => del(`/experiments/${x.experiment_id}`))}
                onRestore={() => act(() => post(`/experiments/${x.experiment_id}/restore`))}
              />
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function CreateExperiment({ onCreate }: { onCreate: (name: string) => Promise<void> }) {
  const [name, setName] = useState("");
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!name.trim()) return;
    await onCreate(name.trim());
    setName("");
  };
  return (
    <form className="toolbar" onSubmit={submit} aria-label="Create experiment">
      <label>
        New experiment name
        <input value={name} onChange={(e) => setName(e.target.value)} />
      </label>
      <button type="submit" disabled={!name.trim()}>
        Create
      </button>
    </form>
  );
}

interface RowProps {
  experiment: Experiment;
  chosen: boolean;
  onToggle: () => void;
  onRename: (name: string) => Promise<void>;
  onDelete: () => Promise<void>;
  onRestore: () => Promise<void>;
}

function ExperimentRow({ experiment: x, chosen, onToggle, onRename, onDelete, onRestore }: RowProps) {
  const [editing, setEditing] = useState(false);
  const [name, setName] = useState(x.name);
  const deleted = x.lifecycle_stage === "deleted";
  const save = async (e: FormEvent) => {
    e.preventDefault();
    await onRename(name.trim());
    setEditing(false);
  };
  return (
    <tr>
      <td>
        <input type="checkbox" checked={chosen} onChange={onToggle} aria-label={`Select ${x.name}`} />
      </td>
      <td>
        {editing ? (
          <form onSubmit={save} className="inline">
            <label className="sr-only" htmlFor={`rename-${x.experiment_id}`}>
              New name for {x.name}
            </label>
            <input id={`rename-${x.experiment_id}`} value={name} autoFocus onChange={(e) => setName(e.target.value)} />
            <button type="submit">Save</button>
            <button type="button" onClick={() => setEditing(false)}>
              Cancel
            </button>
          </form>
        ) : (
          <Link to={paths.runs([x.experiment_id])}>{x.name}</Link>
        )}
      </td>
      <td className="mono">{x.experiment_id}</td>
      <td>{formatTime(x.creation_time)}</td>
      <td className="actions">
        {deleted ? (
          <button type="button" onClick={onRestore} aria-label={`Restore ${x.name}`}>
            Restore
          </button>
        ) : (
          <>
            <button type="button" onClick={() => setEditing(true)} aria-label={`Rename ${x.name}`}>
              Rename
            </button>
            <button type="button" className="danger" onClick={onDelete} aria-label={`Delete ${x.name}`}>
              Delete
            </button>
          </>
        )}
      </td>
    </tr>
  );
}
