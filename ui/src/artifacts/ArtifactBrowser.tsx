import { useEffect, useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { get, query } from "../api/client";
import type { FileInfo } from "../api/types";
import { ErrorBox } from "../components/Status";
import { formatBytes } from "../components/format";
import { Preview } from "./Preview";

/** A run's artifacts, one folder at a time, with a preview of the chosen file. The folder
 * and the file are in the URL (?path=model/MLmodel), so a preview can be shared. */
export function ArtifactBrowser({ runId }: { runId: string }) {
  const [params] = useSearchParams();
  const path = params.get("path") ?? "";
  const [entries, setEntries] = useState<FileInfo[] | null>(null);
  const [parentEntries, setParentEntries] = useState<FileInfo[]>([]);
  const [error, setError] = useState<unknown>(null);
  const parent = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "";

  useEffect(() => {
    setError(null);
    const list = (p: string) => get<FileInfo[]>(`/runs/${runId}/artifacts` + query({ path: p || undefined }));
    // `path` is a folder or a file; list it, and its parent for a file's size
    Promise.all([list(path), path ? list(parent) : Promise.resolve([])])
      .then(([here, up]) => {
        setEntries(here);
        setParentEntries(up);
      })
      .catch(setError);
  }, [runId, path, parent]);

  const file = parentEntries.find((e) => e.path === path && !e.is_dir);
  const folder = file ? parent : path;
  const shown = file ? parentEntries : entries ?? [];
  const link = (p: string) => `?path=${encodeURIComponent(p)}`;

  return (
    <div className="artifacts">
      <nav aria-label="Artifact folders" className="artifact-tree">
        <p className="crumbs">
          <Link to={link("")}>artifacts</Link>
          {folder
            .split("/")
            .filter(Boolean)
            .map((part, i, all) => (
              <span key={i}>
                {" / "}
                <Link to={link(all.slice(0, i + 1).join("/"))}>{part}</Link>
              </span>
            ))}
        </p>
        <ErrorBox error={error} />
        <ul>
          {shown.map((e) => (
            <li key={e.path} className={e.path === path ? "current" : undefined}>
              <Link to={link(e.path)} aria-current={e.path === path ? "page" : undefined}>
                {e.is_dir ? "📁 " : ""}
                {e.path.split("/").pop()}
              </Link>{" "}
              <span className="muted">{e.is_dir ? "" : formatBytes(e.file_size)}</span>
            </li>
          ))}
          {shown.length === 0 && !error && <li className="muted">No artifacts.</li>}
        </ul>
      </nav>
      <div className="artifact-preview">
        {file ? <Preview runId={runId} path={file.path} size={file.file_size} /> : <p className="muted">Choose a file to preview it.</p>}
      </div>
    </div>
  );
}
