import { useEffect, useRef } from "react";
import { Link } from "react-router-dom";
import { useVirtualizer } from "@tanstack/react-virtual";
import type { Column } from "./columns";
import type { Row } from "./tree";
import { paths } from "../routes";

const ROW_HEIGHT = 32;

interface Props {
  rows: Row[];
  total: number;
  columns: Column[];
  sort: { key: string; desc: boolean } | null;
  onSort: (key: string) => void;
  selected: Set<string>;
  onSelect: (runId: string) => void;
  collapsed: Set<string>;
  onCollapse: (runId: string) => void;
  /** Called when the last loaded rows come into view: load the next page. */
  onNearEnd: () => void;
  version: number;
}

/** The runs as a virtualised grid: only the rows in view (and a few more) are in the DOM,
 * so 10,000 runs scroll like 10. */
export function RunsTable(p: Props) {
  const scroller = useRef<HTMLDivElement>(null);
  const virtual = useVirtualizer({
    count: p.rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
  });
  const items = virtual.getVirtualItems();
  const last = items.length ? items[items.length - 1].index : -1;
  const { rows, onNearEnd } = p;
  useEffect(() => {
    if (last >= rows.length - 20) onNearEnd();
  }, [last, rows.length, onNearEnd]);

  const width = 44 + p.columns.reduce((s, c) => s + c.width, 0);
  const template = `44px ${p.columns.map((c) => `${c.width}px`).join(" ")}`;
  return (
    <div
      className="runs-grid"
      role="table"
      aria-label="Runs"
      aria-rowcount={p.total + 1}
      ref={scroller}
      tabIndex={0}
    >
      <div className="runs-head" role="row" aria-rowindex={1} style={{ gridTemplateColumns: template, width }}>
        <div role="columnheader">
          <span className="sr-only">Select</span>
        </div>
        {p.columns.map((c) => {
          const sorted = p.sort?.key === c.key;
          return (
            <div
              key={c.key}
              role="columnheader"
              aria-sort={sorted ? (p.sort!.desc ? "descending" : "ascending") : "none"}
              className={`kind-${c.kind}`}
            >
              <button type="button" onClick={() => p.onSort(c.key)} title={`Sort by ${c.key}`}>
                {c.label}
                {sorted ? (p.sort!.desc ? " ▼" : " ▲") : ""}
              </button>
            </div>
          );
        })}
      </div>
      <div role="rowgroup" style={{ height: virtual.getTotalSize(), width, position: "relative" }}>
        {items.map((item) => {
          const row = p.rows[item.index];
          const r = row.run;
          const id = r.info.run_id;
          return (
            <div
              key={id}
              role="row"
              aria-rowindex={item.index + 2}
              className={`runs-row${p.selected.has(id) ? " selected" : ""}`}
              data-run-id={id}
              style={{ gridTemplateColumns: template, transform: `translateY(${item.start}px)`, height: ROW_HEIGHT }}
            >
              <div role="cell">
                <input
                  type="checkbox"
                  checked={p.selected.has(id)}
                  onChange={() => p.onSelect(id)}
                  aria-label={`Select run ${r.info.run_name ?? id}`}
                />
              </div>
              {p.columns.map((c, i) =>
                i === 0 ? (
                  <div role="cell" key={c.key} className="name-cell" style={{ paddingLeft: 4 + row.depth * 18 }}>
                    {row.children > 0 ? (
                      <button
                        type="button"
                        className="twisty"
                        aria-expanded={!p.collapsed.has(id)}
                        aria-label={`${p.collapsed.has(id) ? "Show" : "Hide"} ${row.children} nested runs of ${r.info.run_name ?? id}`}
                        onClick={() => p.onCollapse(id)}
                      >
                        {p.collapsed.has(id) ? "▸" : "▾"}
                      </button>
                    ) : (
                      <span className="twisty" aria-hidden="true" />
                    )}
                    <Link to={paths.run(id)}>{c.text(r)}</Link>
                  </div>
                ) : (
                  <div role="cell" key={c.key} className={c.kind === "metrics" ? "num" : undefined} data-column={c.key}>
                    {c.text(r)}
                  </div>
                ),
              )}
            </div>
          );
        })}
      </div>
    </div>
  );
}
