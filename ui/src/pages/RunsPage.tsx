import { useCallback, useEffect, useMemo, useState } from "react";
import { Link, useParams, useSearchParams } from "react-router-dom";
import { get } from "../api/client";
import type { Experiment } from "../api/types";
import { ErrorBox } from "../components/Status";
import { FIXED, availableKeys, chosenColumn, defaultKeys, orderBy } from "../runs/columns";
import { FilterBox } from "../runs/FilterBox";
import { RunsTable } from "../runs/RunsTable";
import { nest } from "../runs/tree";
import { useRunList } from "../runs/useRunList";
import { paths } from "../routes";

/** The runs of one or several experiments. URL:
 * /experiments/ID[,ID…]/runs?filter=…&sort=metrics.acc&desc=1&cols=metrics.acc,params.lr */
export function RunsPage() {
  const { experimentIds = "" } = useParams();
  const ids = useMemo(() => experimentIds.split(",").filter(Boolean), [experimentIds]);
  const [params, setParams] = useSearchParams();
  const filter = params.get("filter") ?? "";
  const sortKey = params.get("sort");
  const desc = params.get("desc") !== "0";
  const sort = sortKey ? { key: sortKey, desc } : null;
  const fixedSort = FIXED.find((c) => c.key === sortKey);
  const serverSort = sortKey !== null && (fixedSort ? fixedSort.serverSort : true);
  const order = serverSort ? orderBy(sortKey!, desc) : null;

  const [experiments, setExperiments] = useState<Experiment[]>([]);
  useEffect(() => {
    Promise.all(ids.map((id) => get<Experiment>(`/experiments/${id}`)))
      .then(setExperiments)
      .catch(() => setExperiments([]));
  }, [ids]);

  const list = useRunList(ids, filter, order);
  const keys = useMemo(() => availableKeys(list.runs), [list.runs, list.version]);
  const colsParam = params.get("cols");
  const chosen = colsParam !== null ? colsParam.split(",").filter((k) => k.includes(".")) : defaultKeys(keys);
  const columns = useMemo(() => [...FIXED, ...chosen.map(chosenColumn)], [chosen.join(",")]);

  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [collapsed, setCollapsed] = useState<Set<string>>(new Set());
  const flip = (set: Set<string>, id: string) => {
    const next = new Set(set);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    return next;
  };

  const rows = useMemo(() => {
    let runs = list.runs;
    if (sortKey && !serverSort) {
      const col = columns.find((c) => c.key === sortKey) ?? FIXED[0];
      runs = [...runs].sort((a, b) => {
        const x = col.sortValue(a), y = col.sortValue(b);
        return (x < y ? -1 : x > y ? 1 : 0) * (desc ? -1 : 1);
      });
    }
    return nest(runs, collapsed);
  }, [list.runs, list.version, collapsed, sortKey, serverSort, desc, columns]);

  const update = (changes: Record<string, string | null>) => {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) {
      if (v === null || v === "") next.delete(k);
      else next.set(k, v);
    }
    setParams(next, { replace: true });
  };
  const onSort = (key: string) =>
    update(sortKey === key ? { desc: desc ? "0" : "1" } : { sort: key, desc: "1" });
  const toggleColumn = (key: string) =>
    update({ cols: (chosen.includes(key) ? chosen.filter((k) => k !== key) : [...chosen, key]).join(",") || "-" });
  const onNearEnd = useCallback(() => list.loadMore(), [list.loadMore]);
  const title = experiments.map((x) => x.name).join(", ") || ids.join(", ");

  return (
    <section aria-labelledby="runs-title" className="runs-page">
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to={paths.experiments()}>Experiments</Link> / <span>{title}</span>
      </nav>
      <h1 id="runs-title">Runs of {title}</h1>
      <FilterBox value={filter} onApply={(f) => update({ filter: f })} error={list.error} />
      {list.error && !(list.error as { field?: string }).field && <ErrorBox error={list.error} />}
      <div className="toolbar">
        <span aria-live="polite" className="count">
          {list.runs.length} runs{list.hasMore ? " loaded (scroll for more)" : ""}
          {list.loading ? " · loading…" : ""}
          {/* the server cannot order by this column: say that only what is loaded is sorted */}
          {sortKey && !serverSort && list.hasMore
            ? ` · sorted by ${(columns.find((c) => c.key === sortKey) ?? FIXED[0]).label.toLowerCase()} among these only`
            : ""}
        </span>
        <details className="chooser">
          <summary>Columns ({chosen.length})</summary>
          <fieldset>
            <legend>Metric, param and tag columns</legend>
            {[...new Set([...keys, ...chosen])].sort().map((k) => (
              <label key={k}>
                <input type="checkbox" checked={chosen.includes(k)} onChange={() => toggleColumn(k)} /> {k}
              </label>
            ))}
          </fieldset>
        </details>
        {selected.size >= 1 ? (
          <Link className="button" to={paths.compare([...selected])}>
            Compare {selected.size} selected runs
          </Link>
        ) : (
          <span className="muted">Select runs to compare</span>
        )}
      </div>
      <RunsTable
        rows={rows}
        total={list.runs.length}
        columns={columns}
        sort={sort}
        onSort={onSort}
        selected={selected}
        onSelect={(id) => setSelected((s) => flip(s, id))}
        collapsed={collapsed}
        onCollapse={(id) => setCollapsed((s) => flip(s, id))}
        onNearEnd={onNearEnd}
        version={list.version}
      />
    </section>
  );
}
