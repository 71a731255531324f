import { PARENT_TAG, type Run } from "../api/types";

export interface Row {
  run: Run;
  depth: number;
  children: number;
}

/** Runs in the table's order with each nested run right under its parent (when the parent
 * is loaded); children of a collapsed parent are left out. */
export function nest(runs: Run[], collapsed: Set<string>): Row[] {
  const ids = new Set(runs.map((r) => r.info.run_id));
  const kids = new Map<string, Run[]>();
  const roots: Run[] = [];
  for (const r of runs) {
    const parent = r.data.tags[PARENT_TAG];
    if (parent && ids.has(parent) && parent !== r.info.run_id) {
      const list = kids.get(parent) ?? [];
      list.push(r);
      kids.set(parent, list);
    } else roots.push(r);
  }
  const rows: Row[] = [];
  const seen = new Set<string>();
  const visit = (r: Run, depth: number) => {
    if (seen.has(r.info.run_id)) return;
    seen.add(r.info.run_id);
    const children = kids.get(r.info.run_id) ?? [];
    rows.push({ run: r, depth, children: children.length });
    if (!collapsed.has(r.info.run_id)) for (const c of children) visit(c, depth + 1);
  };
  for (const r of roots) visit(r, 0);
  return rows;
}
