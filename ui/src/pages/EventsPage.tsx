import { FormEvent, useEffect, useRef, useState } from "react";
import { useSearchParams } from "react-router-dom";
import { useVirtualizer } from "@tanstack/react-virtual";
import type { LogEvent } from "../api/events";
import { tailEvents, type TailNotice } from "../api/tail";
import { formatTime } from "../components/format";

/** How many events the page keeps by default (the oldest go first), and at most (`keep=`):
 * memory stays bounded however long the tail runs; only the rows in view are in the DOM. */
export const KEEP = 1000;
const MAX_KEEP = 10000;
const FLUSH_MS = 100;

/** A live tail of the event log (SSE) from the moment the page opens, filtered by type
 * globs, newest first; pause stops reading and resume picks up where it stopped (nothing
 * missed). Each event opens to its JSON. URL: /events?types=run.*,job.*&keep=1000 */
export function EventsPage() {
  const [params, setParams] = useSearchParams();
  const typesParam = params.get("types") ?? "";
  const types = typesParam.split(",").map((t) => t.trim()).filter(Boolean);
  const keep = Math.min(MAX_KEEP, Math.max(1, Number(params.get("keep")) || KEEP));
  const [draft, setDraft] = useState(typesParam);
  const [events, setEvents] = useState<LogEvent[]>([]);
  const [paused, setPaused] = useState(false);
  const [notice, setNotice] = useState<TailNotice | null>(null);
  const [open, setOpen] = useState<Set<string>>(new Set());
  const resume = useRef("latest");
  const [seen, setSeen] = useState(0);
  const [generation, setGeneration] = useState(0);

  useEffect(() => setDraft(typesParam), [typesParam]);
  useEffect(() => {
    resume.current = "latest";
    setEvents([]);
    setSeen(0);
  }, [typesParam]);

  // Events arriving in a burst are added to the list together, at most every FLUSH_MS, so
  // the page renders a few times a second however fast the log moves.
  useEffect(() => {
    if (paused) return;
    setNotice(null);
    let pending: LogEvent[] = [];
    let arrived = 0;
    let timer = 0;
    const flush = () => {
      timer = 0;
      const batch = pending.reverse();
      pending = [];
      const count = arrived;
      arrived = 0;
      setSeen((n) => n + count);
      setEvents((list) => (batch.length >= keep ? batch.slice(0, keep) : [...batch, ...list.slice(0, keep - batch.length)]));
    };
    const stop = tailEvents(
      types,
      resume.current,
      (e, token) => {
        resume.current = token;
        arrived += 1;
        pending.push(e);
        if (pending.length > 2 * keep) pending = pending.slice(-keep);
        if (!timer) timer = window.setTimeout(flush, FLUSH_MS);
      },
      (n) => {
        if (n.kind === "ended" && n.token) {
          // a burst outran this page: go on from where the server says, missing nothing
          resume.current = n.token;
          setGeneration((g) => g + 1);
        } else setNotice(n);
      },
    );
    return () => {
      stop();
      window.clearTimeout(timer);
      if (pending.length) flush();
    };
    // types is described by typesParam
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [typesParam, paused, keep, generation]);

  const apply = (e: FormEvent) => {
    e.preventDefault();
    const next = new URLSearchParams(params);
    if (draft.trim()) next.set("types", draft.trim());
    else next.delete("types");
    setParams(next, { replace: true });
  };

  const scroller = useRef<HTMLDivElement>(null);
  const rows = useVirtualizer({
    count: events.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => 32,
    overscan: 10,
    getItemKey: (i) => events[i].id,
  });

  const toggle = (id: string) =>
    setOpen((s) => {
      const next = new Set(s);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });

  return (
    <section aria-labelledby="events-title">
      <h1 id="events-title">Events</h1>
      <form className="toolbar" onSubmit={apply} role="search">
        <label>
          Event types
          <input value={draft} onChange={(e) => setDraft(e.target.value)} placeholder="run.*, job.* (all when empty)" size={40} />
        </label>
        <button type="submit">Apply</button>
        <button type="button" onClick={() => setPaused((p) => !p)} aria-pressed={paused}>
          {paused ? "Resume" : "Pause"}
        </button>
        <span className="muted" aria-live="polite">
          {paused ? "Paused" : "Live"} · {seen} received · {events.length} kept (at most {keep})
        </span>
      </form>
      {notice && (
        <p role="alert" className={notice.kind === "error" ? "error" : "muted"}>
          Stream {notice.kind === "error" ? "failed" : "ended"}: {notice.message}
        </p>
      )}
      {events.length === 0 && <p className="muted">No events yet: each one appears here as it is appended to the log.</p>}
      {/* a list only once it has items (an empty list role is an error to screen readers) */}
      <div ref={scroller} className="events-list" role={events.length > 0 ? "list" : undefined} aria-label={events.length > 0 ? "Events, newest first" : undefined}>
        <div style={{ height: rows.getTotalSize(), position: "relative" }}>
          {rows.getVirtualItems().map((v) => {
            const e = events[v.index];
            const expanded = open.has(e.id);
            return (
              <div key={v.key} ref={rows.measureElement} data-index={v.index} role="listitem" className="event-row" style={{ transform: `translateY(${v.start}px)` }}>
                <button type="button" className="event-head" aria-expanded={expanded} onClick={() => toggle(e.id)}>
                  <span className="mono">{formatTime(e.time)}</span>
                  <span className="event-type">{e.type}</span>
                  <span className="mono">{e.stream}</span>
                  <span className="muted">{e.actor}</span>
                </button>
                {expanded && <pre className="code" aria-label={`Event ${e.type} as JSON`}>{JSON.stringify(e, null, 2)}</pre>}
              </div>
            );
          })}
        </div>
        {events.length === 0 && <p className="muted">Waiting for events{types.length ? ` of ${types.join(", ")}` : ""}…</p>}
      </div>
    </section>
  );
}
