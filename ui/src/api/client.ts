// The one way the UI talks to Ledgerflow: the public REST API under /api/v1, same origin.
// With auth on, the browser has asked for the user and password (the page's 401 with
// WWW-Authenticate: Basic) and sends them with every same-origin fetch and EventSource.

export const API = "/api/v1";

/** The gateway's error shape: {error_code, message, field}; filter errors add position. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field: string | null = null,
    readonly position: number | null = null,
    /** For a filter error: the token at `position` ("" at the end of the text). */
    readonly token: string | null = null,
  ) {
    super(message);
  }
}

/** A filter error's position: the `position` field when the gateway sends one, else the
 * "at position N" its message carries. */
function positionOf(body: Record<string, unknown>): number | null {
  if (typeof body.position === "number") return body.position;
  const m = /position (\d+)/.exec(String(body.message ?? ""));
  return m ? Number(m[1]) : null;
}

/** Answers asked for before the page that needs them asked (see ../prefetch.ts), by
 * request. Each is handed out once, and only while fresh: a page that asks later gets a new
 * answer, so it never starts from data older than it thinks. */
const early = new Map<string, { at: number; answer: Promise<unknown> }>();
const EARLY_KEEP_MS = 5000;

function requestKey(method: string, path: string, body?: unknown): string {
  return `${method} ${path} ${body === undefined ? "" : JSON.stringify(body)}`;
}

/** Start a request now that a page is about to make; the page's own identical request
 * takes this answer instead of sending another. */
export function prefetch<T>(method: string, path: string, body?: unknown): Promise<T> {
  const answer = send<T>(method, path, body);
  answer.catch(() => undefined); // a failure is the page's to report, when it asks
  early.set(requestKey(method, path, body), { at: performance.now(), answer });
  return answer;
}

export function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const key = requestKey(method, path, body);
  const found = early.get(key);
  if (found) {
    early.delete(key);
    if (performance.now() - found.at < EARLY_KEEP_MS) return found.answer as Promise<T>;
  }
  return send<T>(method, path, body);
}

async function send<T>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { ...init.headers, "Content-Type": "application/json" };
  }
  const res = await fetch(API + path, init);
  if (!res.ok) {
    let parsed: Record<string, unknown> = {};
    try {
      parsed = await res.json();
    } catch {
      /* not JSON: the status says enough */
    }
    throw new ApiError(
      res.status,
      String(parsed.error_code ?? res.status),
      String(parsed.message ?? res.statusText),
      (parsed.field as string | null) ?? null,
      positionOf(parsed),
      typeof parsed.token === "string" ? parsed.token : null,
    );
  }
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

export const get = <T>(path: string) => request<T>("GET", path);
export const post = <T>(path: string, body?: unknown) => request<T>("POST", path, body ?? {});
export const patch = <T>(path: string, body: unknown) => request<T>("PATCH", path, body);
export const del = <T>(path: string) => request<T>("DELETE", path);

export function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

/** Metric values may travel as "NaN" / "Infinity" / "-Infinity". */
export function num(v: number | string): number {
  return typeof v === "number" ? v : Number(v === "Infinity" ? Infinity : v === "-Infinity" ? -Infinity : NaN);
}
