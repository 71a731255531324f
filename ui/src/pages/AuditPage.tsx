import { FormEvent, useCallback, useEffect, useState } from "react";
import { useSearchParams } from "react-router-dom";
import { get, query } from "../api/client";
import type { AuditEntry, AuditPage as Page } from "../api/types";
import { ErrorBox, Loading } from "../components/Status";
import { formatTime } from "../components/format";
import { useLatest } from "../api/latest";

const FILTERS = [
  { key: "entity", label: "Entity", hint: "model:digits-cnn, experiment:1, run:* …" },
  { key: "actor", label: "Actor", hint: "user:alice, user:*" },
  { key: "type", label: "Type", hint: "deployment.*" },
  { key: "since", label: "Since", hint: "1h, 2d, 2026-12-03" },
] as const;
const PAGE = 50;

function Change({ value }: { value: Record<string, unknown> | null }) {
  if (!value) return <span className="muted">—</span>;
  return <code className="change">{JSON.stringify(value)}</code>;
}

/** The audit trail (GET /api/v1/audit): who did what, when, with what it replaced and
 * what it became; filtered by entity, actor, type and time, newest first, a page at a
 * time. URL: /audit?entity=…&actor=…&type=…&since=… */
export function AuditPage() {
  const [params, setParams] = useSearchParams();
  const filters = Object.fromEntries(FILTERS.map((f) => [f.key, params.get(f.key) ?? ""]));
  const filterKey = FILTERS.map((f) => filters[f.key]).join("\u0000");
  const [draft, setDraft] = useState(filters);
  const [entries, setEntries] = useState<AuditEntry[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);

  const fetchPage = useCallback(
    (token: string | null) =>
      get<Page>("/audit" + query({ ...Object.fromEntries(Object.entries(filters).filter(([, v]) => v)), max_results: PAGE, page_token: token })),
    // filters is described by filterKey
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [filterKey],
  );

  const latest = useLatest();
  useEffect(() => {
    setDraft(filters);
    setEntries(null);
    setError(null);
    latest(fetchPage(null))
      .then((p) => (setEntries(p.entries), setNext(p.next_page_token)))
      .catch((e) => (setError(e), setEntries([])));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [fetchPage]);

  const more = () =>
    fetchPage(next)
      .then((p) => (setEntries((list) => [...(list ?? []), ...p.entries]), setNext(p.next_page_token)))
      .catch(setError);

  const apply = (e: FormEvent) => {
    e.preventDefault();
    const next = new URLSearchParams();
    for (const f of FILTERS) if (draft[f.key].trim()) next.set(f.key, draft[f.key].trim());
    setParams(next, { replace: true });
  };

  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">Audit</h1>
      <form className="toolbar" onSubmit={apply} role="search" aria-label="Filter the audit trail">
        {FILTERS.map((f) => (
          <label key={f.key}>
            {f.label}
            <input value={draft[f.key]} placeholder={f.hint} onChange={(e) => setDraft({ ...draft, [f.key]: e.target.value })} />
          </label>
        ))}
        <button type="submit">Apply</button>
      </form>
      <ErrorBox error={error} />
      {!entries && <Loading what="the audit trail" />}
      {entries && entries.length === 0 && !error && <p className="muted">No entries.</p>}
      {entries && entries.length > 0 && (
        <table className="grid wide audit" aria-label="Audit entries">
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Actor</th>
              <th scope="col">Type</th>
              <th scope="col">Entity</th>
              <th scope="col">What</th>
              <th scope="col">Before</th>
              <th scope="col">After</th>
            </tr>
          </thead>
          <tbody>
            {entries.map((e) => (
              <tr key={`${e.event_id}-${e.time}`}>
                <td className="nowrap">{formatTime(e.time)}</td>
                <td>
                  {e.actor}
                  {e.token_id && <span className="muted"> via token {e.token_id}</span>}
                </td>
                <td className="mono">{e.type}</td>
                <td className="mono">
                  {e.stream}
                  {e.resource && e.resource !== e.stream && <span className="muted"> in {e.resource}</span>}
                </td>
                <td>
                  {e.summary}
                  {e.events > 1 && <span className="muted"> ({e.events} events)</span>}
                </td>
                <td>
                  <Change value={e.before} />
                </td>
                <td>
                  <Change value={e.after} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {next && (
        <button type="button" onClick={more}>
          Load older entries
        </button>
      )}
    </section>
  );
}
