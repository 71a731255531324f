import { useEffect, useRef } from "react";
import { API } from "./client";

/** One event from the log, as the SSE stream sends it. */
export interface LogEvent {
  id: string;
  type: string;
  stream: string;
  time: number;
  actor: string;
  data: Record<string, unknown>;
}

/** Follow the event stream (`GET /api/v1/events/stream`) for `types` from now on, or from
 * `after` (a log position an answer reflected, so that nothing logged since is missed): no
 * polling; the browser's EventSource reconnects and resumes by itself (Last-Event-ID). */
export function useEventStream(types: string[], onEvent: (e: LogEvent) => void, enabled = true, after: string | null = null) {
  const handler = useRef(onEvent);
  handler.current = onEvent;
  const key = types.join(",");
  useEffect(() => {
    if (!enabled) return;
    const from = encodeURIComponent(after ?? "latest");
    const source = new EventSource(`${API}/events/stream?types=${encodeURIComponent(key)}&after=${from}`);
    const listener = (m: MessageEvent) => handler.current(JSON.parse(m.data) as LogEvent);
    for (const t of key.split(",")) source.addEventListener(t, listener as EventListener);
    return () => source.close();
  }, [key, enabled, after]);
}
