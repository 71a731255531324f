import { useEffect, useState } from "react";
import { API } from "../api/client";
import { formatBytes } from "../components/format";

const MAX_PREVIEW = 2 * 1024 * 1024;
const IMAGE = /\.(png|jpe?g|gif|svg|webp|bmp)$/i;
const TEXT = /\.(txt|log|md|py|json|ya?ml|csv|tsv|ini|toml|cfg|sh|html|xml)$|(^|\/)(MLmodel|requirements\.txt)$/i;

export function contentUrl(runId: string, path: string): string {
  return `${API}/runs/${runId}/artifacts/content/${path.split("/").map(encodeURIComponent).join("/")}`;
}

/** A preview of one artifact: images inline, CSV as a table, JSON and YAML pretty, an
 * MLmodel with its signature, other text as is; anything else is a download link. */
export function Preview({ runId, path, size }: { runId: string; path: string; size: number | null }) {
  const url = contentUrl(runId, path);
  const name = path.split("/").pop() ?? path;
  const head = (
    <p className="preview-head">
      <strong>{path}</strong> <span className="muted">{formatBytes(size)}</span>{" "}
      <a href={url} download={name}>
        Download
      </a>
    </p>
  );
  if (IMAGE.test(path)) {
    return (
      <div className="preview">
        {head}
        <img src={url} alt={`Artifact ${path}`} className="preview-image" />
      </div>
    );
  }
  if (!TEXT.test(path) || (size ?? 0) > MAX_PREVIEW) {
    return (
      <div className="preview">
        {head}
        <p className="muted">No preview for this file type or size.</p>
      </div>
    );
  }
  return (
    <div className="preview">
      {head}
      <TextPreview url={url} path={path} />
    </div>
  );
}

function TextPreview({ url, path }: { url: string; path: string }) {
  const [text, setText] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setText(null);
    fetch(url)
      .then((r) => (r.ok ? r.text() : Promise.reject(new Error(`${r.status} ${r.statusText}`))))
      .then(setText)
      .catch((e) => setError(String(e.message ?? e)));
  }, [url]);
  if (error) return <p role="alert" className="error">{error}</p>;
  if (text === null) return <p className="muted">Loading…</p>;
  if (/\.(csv|tsv)$/i.test(path)) return <CsvTable text={text} sep={path.endsWith(".tsv") ? "\t" : ","} />;
  if (/\.json$/i.test(path)) {
    try {
      return <pre className="code">{JSON.stringify(JSON.parse(text), null, 2)}</pre>;
    } catch {
      return <pre className="code">{text}</pre>;
    }
  }
  if (/(^|\/)MLmodel$/.test(path)) return <MLmodel text={text} />;
  return <pre className="code">{text}</pre>;
}

/** RFC 4180-ish: quoted fields with commas and doubled quotes. */
export function parseCsv(text: string, sep: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === sep) row.push(field), (field = "");
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field), rows.push(row), (row = []), (field = "");
    } else field += c;
  }
  if (field || row.length) row.push(field), rows.push(row);
  return rows;
}

function CsvTable({ text, sep }: { text: string; sep: string }) {
  const [header, ...rows] = parseCsv(text, sep);
  const shown = rows.slice(0, 1000);
  return (
    <div className="scroll-x">
      <table className="grid csv" aria-label="CSV preview">
        <thead>
          <tr>{header?.map((h, i) => <th key={i} scope="col">{h}</th>)}</tr>
        </thead>
        <tbody>
          {shown.map((r, i) => (
            <tr key={i}>{r.map((c, j) => <td key={j}>{c}</td>)}</tr>
          ))}
        </tbody>
      </table>
      {rows.length > shown.length && <p className="muted">First {shown.length} of {rows.length} rows.</p>}
    </div>
  );
}

interface Column {
  name?: string;
  type: string;
  "tensor-spec"?: { dtype: string; shape: number[] };
}

function MLmodel({ text }: { text: string }) {
  const [doc, setDoc] = useState<Record<string, unknown> | null>(null);
  useEffect(() => {
    // the YAML parser is loaded only when an MLmodel is opened
    import("yaml").then((y) => setDoc(y.parse(text) as Record<string, unknown>)).catch(() => setDoc({}));
  }, [text]);
  const sig = (doc?.signature ?? null) as Record<string, string | null> | null;
  const parse = (s: string | null | undefined): Column[] => {
    try {
      return s ? (JSON.parse(s) as Column[]) : [];
    } catch {
      return [];
    }
  };
  return (
    <div>
      {doc && (
        <p>
          Flavors: <strong>{Object.keys((doc.flavors as object) ?? {}).join(", ") || "none"}</strong>
        </p>
      )}
      {sig ? (
        <section aria-label="Signature">
          <h4>Signature</h4>
          {(["inputs", "outputs"] as const).map((part) => (
            <table key={part} className="grid signature" aria-label={`Signature ${part}`}>
              <caption>{part}</caption>
              <thead>
                <tr>
                  <th scope="col">name</th>
                  <th scope="col">type</th>
                  <th scope="col">shape</th>
                </tr>
              </thead>
              <tbody>
                {parse(sig[part]).map((c, i) => (
                  <tr key={i}>
                    <td>{c.name ?? "(tensor)"}</td>
                    <td>{c["tensor-spec"]?.dtype ?? c.type}</td>
                    <td>{c["tensor-spec"] ? `[${c["tensor-spec"].shape.join(", ")}]` : ""}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ))}
        </section>
      ) : doc ? (
        <p className="muted">No signature.</p>
      ) : null}
      <details>
        <summary>MLmodel file</summary>
        <pre className="code">{text}</pre>
      </details>
    </div>
  );
}
