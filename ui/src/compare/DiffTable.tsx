import { Link } from "react-router-dom";
import type { Run } from "../api/types";
import { paths } from "../routes";
import type { Column } from "./columns";

/** Params and metrics side by side, a row per key; rows whose values differ are marked
 * (and said so to screen readers); `onlyDiffering` leaves the equal ones out. */
export function DiffTable({ runs, columns, onlyDiffering }: { runs: Run[]; columns: Column[]; onlyDiffering: boolean }) {
  const rows = onlyDiffering ? columns.filter((c) => c.differs) : columns;
  return (
    <div className="scroll-x">
      <table className="grid compare" aria-label="Params and metrics">
        <thead>
          <tr>
            <th scope="col">Key</th>
            {runs.map((r) => (
              <th key={r.info.run_id} scope="col">
                <Link to={paths.run(r.info.run_id)}>{r.info.run_name ?? r.info.run_id}</Link>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((c) => (
            <tr key={c.key} className={c.differs ? "differs" : undefined}>
              <th scope="row">
                {c.key}
                {c.differs && <span className="sr-only"> (differs)</span>}
              </th>
              {c.texts.map((v, i) => (
                <td key={i}>{v}</td>
              ))}
            </tr>
          ))}
          {rows.length === 0 && (
            <tr>
              <td colSpan={runs.length + 1} className="muted">
                Every param and metric is the same in these runs.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}
