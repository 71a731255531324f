import { API } from "./client";
import type { LogEvent } from "./events";

/** What the stream says besides events: it ended (a slow reader) or the connection broke. */
export type TailNotice = { kind: "ended" | "error"; message: string; token?: string };

/** Follow `GET /api/v1/events/stream` for any event types (globs such as `run.*`) from
 * `after` on. EventSource can only listen to event names it knows in advance, so this reads
 * the stream with fetch and parses it by the SSE rules (id/event/data lines, a blank line
 * ends a message). Returns a function that stops it. */
export function tailEvents(
  types: string[],
  after: string,
  onEvent: (e: LogEvent, resumeToken: string) => void,
  onNotice: (n: TailNotice) => void,
): () => void {
  const abort = new AbortController();
  const q = new URLSearchParams({ after });
  if (types.length) q.set("types", types.join(","));
  void (async () => {
    try {
      const res = await fetch(`${API}/events/stream?${q}`, { signal: abort.signal, headers: { Accept: "text/event-stream" } });
      if (!res.ok || !res.body) {
        let message = res.statusText;
        try {
          message = String((await res.json()).message ?? message);
        } catch {
          /* not JSON */
        }
        onNotice({ kind: "error", message });
        return;
      }
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      let id = "";
      let name = "";
      let data: string[] = [];
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let nl: number;
        while ((nl = buffer.search(/\r?\n/)) >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(buffer[nl] === "\r" ? nl + 2 : nl + 1);
          if (line === "") {
            if (data.length) {
              const text = data.join("\n");
              if (name === "subscription.ended") {
                // fell too far behind: the server names the token to resume from
                const body = JSON.parse(text) as { message?: string; token?: string };
                onNotice({ kind: "ended", message: String(body.message ?? text), token: body.token });
                abort.abort();
                return;
              }
              else if (!name.startsWith("subscription.")) onEvent(JSON.parse(text) as LogEvent, id);
            }
            name = "";
            data = [];
            continue;
          }
          if (line.startsWith(":")) continue; // a heartbeat
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "id") id = val;
          else if (field === "event") name = val;
          else if (field === "data") data.push(val);
        }
      }
      onNotice({ kind: "ended", message: "the server closed the stream" });
    } catch (e) {
      if (!abort.signal.aborted) onNotice({ kind: "error", message: String(e) });
    }
  })();
  return () => abort.abort();
}
