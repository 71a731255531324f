"""The HTTP side of remote mode: one httpx client per gateway, with timeouts, retries,
the caller's credentials on every request (`ledgerflow.remote.credentials`), and the
gateway's JSON errors turned back into the exceptions embedded mode raises (401 and 403
as `Unauthenticated` and `PermissionDenied`, saying what to set or whom to ask).

Retries: a call is tried again, with growing pauses, when the gateway could not be
reached or answered 502/503/504, but only when repeating it is harmless: reads,
PUT/DELETE, searches and event ingest (events carry ids). A call that creates
something (a run, a model version) is repeated only when the connection was
never made, so it cannot have been applied.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from ledgerflow.events import tracing
from ledgerflow.events.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    LedgerflowError,
    NotFound,
    PermissionDenied,
    Timeout,
    Unauthenticated,
    Unavailable,
)
from ledgerflow.events.permissions import KINDS
from ledgerflow.remote.credentials import HOW_TO_SIGN_IN, Credentials
from ledgerflow.remote.tls import Verify

API = "/api/v1"
"""Where the gateway's native routes live."""
ACTOR_HEADER = "X-Ledgerflow-Actor"
log = logging.getLogger("ledgerflow.remote")
RETRY_STATUSES = frozenset({502, 503, 504})
MAX_PAUSE_S = 2.0
"""The longest pause between two tries of a call."""
_CHUNK = 1 << 20


def segment(value: str) -> str:
    """`value` as one URL path segment: '/' and '?' escaped, and '.'/'..' too, which
    HTTP clients would otherwise fold away as relative references."""
    text = quote(str(value), safe="")
    return text.replace(".", "%2E") if text in (".", "..") else text


def error_from(response: httpx.Response, what: str) -> LedgerflowError:
    """The exception a gateway error response stands for."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("detail"), dict):
        body = body["detail"]  # event-stream errors of gateways before 2026-12-04
    if not isinstance(body, dict) or "error_code" not in body:
        body = {}
    message = body.get("message") or (
        f"{what}: the gateway answered {response.status_code} {response.reason_phrase}"
    )
    code, status = body.get("error_code"), response.status_code
    if code == InvalidInput.code or (code is None and status in (400, 422)):
        position = body.get("position")
        return InvalidInput(
            message,
            field=body.get("field"),
            position=position if isinstance(position, int) else None,
            token=body.get("token"),
        )
    if code == NotFound.code or (code is None and status == 404):
        return NotFound(message, kind=body.get("kind") or "", key=body.get("key") or "")
    if code == AlreadyExists.code:
        return AlreadyExists(message)
    if code == Unauthenticated.code or (code is None and status == 401):
        return Unauthenticated(message)
    if code == PermissionDenied.code or (code is None and status == 403):
        return PermissionDenied(message, kind=body.get("kind") or "", key=body.get("key") or "")
    if code == Conflict.code or (code is None and status == 409):
        return Conflict(message)
    if code == Timeout.code or (code is None and status == 504):
        return Timeout(message)
    if code == Unavailable.code or (code is None and status in RETRY_STATUSES):
        return Unavailable(message)
    return LedgerflowError(message)


def explain(
    error: LedgerflowError, base_url: str, credentials: Credentials | None
) -> LedgerflowError:
    """A 401 or 403 told in terms of this client: which credential was refused or is
    missing, and what to do. Other errors pass through unchanged."""
    if isinstance(error, Unauthenticated):
        if credentials is None:
            return Unauthenticated(
                f"the gateway at {base_url} requires credentials: {HOW_TO_SIGN_IN}"
            )
        return Unauthenticated(
            f"the gateway at {base_url} refused {credentials.describe()}: {error.message}"
        )
    if isinstance(error, PermissionDenied):
        message = f"{error.message} (the gateway at {base_url})"
        if error.kind in KINDS and error.key:
            message += (
                f"; an admin, or someone with MANAGE on it, can grant it: `ledgerflow "
                f"permissions set {error.kind} {error.key} USER LEVEL`"
            )
        return PermissionDenied(message, kind=error.kind, key=error.key, needs=error.needs)
    return error


class GatewayHTTP:
    """Requests to one gateway; thread-safe (httpx pools connections). `credentials` go
    on every request to the gateway, never on presigned object-store URLs; `verify` is
    what an https:// gateway's certificate is checked against (`remote.tls`)."""

    def __init__(
        self,
        base_url: str,
        *,
        credentials: Credentials | None = None,
        verify: Verify = True,
        read_timeout: float = 90.0,
        connect_timeout: float = 5.0,
        attempts: int = 4,
        first_pause: float = 0.2,
        wait_s: float = 0.0,
    ) -> None:
        """A call is sent up to `attempts` times on errors worth retrying. Within
        `patiently()` (a command whose answer the caller needs, such as starting a run or
        registering a model), while the gateway cannot be reached at all (nothing was sent)
        it keeps trying for `wait_s` seconds (LEDGERFLOW_GATEWAY_WAIT_S), saying so: a
        gateway restarting takes a moment, and a training job should not fail for it."""
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.verify = verify
        self.attempts = attempts
        self.first_pause = first_pause
        self.wait_s = wait_s
        self._patience = threading.local()
        self._timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self._client = httpx.Client(
            base_url=self.base_url, timeout=self._timeout, auth=credentials, verify=verify
        )
        self._direct = httpx.Client(timeout=self._timeout)  # presigned URLs: no gateway headers

    @contextlib.contextmanager
    def patiently(self, patient: bool = True) -> Iterator[None]:
        """Calls this thread makes inside wait out an unreachable gateway (`wait_s`)."""
        before = getattr(self._patience, "on", False)
        self._patience.on = patient
        try:
            yield
        finally:
            self._patience.on = before

    def error(self, response: httpx.Response, what: str) -> LedgerflowError:
        """The exception a gateway error response stands for, told for this client."""
        return explain(error_from(response, what), self.base_url, self.credentials)

    def close(self) -> None:
        self._client.close()
        self._direct.close()

    def unreachable(self, e: Exception, waited: float = 0.0) -> Unavailable:
        reason = str(e) or type(e).__name__
        tried = f" in {waited:.0f} s (LEDGERFLOW_GATEWAY_WAIT_S)" if waited >= 1 else ""
        return Unavailable(
            f"cannot reach the Ledgerflow gateway at {self.base_url}{tried} ({reason}); is "
            "`ledgerflow gateway` running there, and is LEDGERFLOW_TRACKING_URI right?"
        )

    def _note_waiting(self, e: Exception, what: str, until: float) -> None:
        left = until - time.monotonic()
        if left > 1:
            reason = str(e) or type(e).__name__
            log.warning(
                "ledgerflow: cannot reach the gateway at %s (%s); retrying %s for up to "
                "%.0f s more (LEDGERFLOW_GATEWAY_WAIT_S)", self.base_url, reason, what, left,
            )  # fmt: skip

    def _lost(self, e: Exception, what: str) -> Unavailable:
        reason = str(e) or type(e).__name__
        cls = Timeout if isinstance(e, httpx.TimeoutException) else Unavailable
        return cls(
            f"{what}: the gateway at {self.base_url} did not answer ({reason}); the call "
            "may or may not have been applied"
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        actor: str | None = None,
        params: dict[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        idempotent: bool | None = None,
        attempts: int | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Send one call and return its decoded JSON (None for an empty answer)."""
        if idempotent is None:
            idempotent = method in ("GET", "PUT", "DELETE")
        tries = self.attempts if attempts is None else attempts
        headers = {ACTOR_HEADER: actor} if actor else {}
        if content is not None:
            headers["content-type"] = "application/json"
        trace = tracing.traceparent()
        if trace is not None:  # the gateway's span continues this process's trace
            headers["traceparent"] = trace
        what = f"{method} {path}"
        pause = self.first_pause
        # while nothing could be sent, keep trying until then (unless told how many times)
        started = time.monotonic()
        patient = attempts is None and getattr(self._patience, "on", False)
        wait_until = started + (self.wait_s if patient else 0.0)
        attempt = 0
        while True:
            attempt += 1
            last = attempt >= max(tries, 1)
            try:
                response = self._client.request(
                    method,
                    path,
                    params={k: v for k, v in (params or {}).items() if v is not None},
                    json=json,
                    content=content,
                    headers=headers,
                    timeout=self._timeout if timeout is None else timeout,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as e:
                if last and time.monotonic() >= wait_until:
                    waited = time.monotonic() - started if patient else 0.0
                    raise self.unreachable(e, waited=waited) from None
                if attempt == max(tries, 1):  # where it used to give up: say it waits on
                    self._note_waiting(e, what, wait_until)
            except httpx.TransportError as e:  # sent, but the answer never came back
                if last or not idempotent:
                    raise self._lost(e, what) from None
            else:
                if response.status_code < 400:
                    return response.json() if response.content else None
                error = self.error(response, what)
                if last or not idempotent or response.status_code not in RETRY_STATUSES:
                    raise error
            time.sleep(min(pause, wait_until - time.monotonic()) if last else pause)
            pause = min(pause * 2, MAX_PAUSE_S)

    def _url(self, url: str) -> tuple[httpx.Client, str]:
        if url.startswith(("http://", "https://")):
            return self._direct, url
        return self._client, url

    def _unreachable(self, client: httpx.Client, url: str, e: Exception) -> Unavailable:
        """The gateway unreachable, or the object store a presigned URL points at: a
        message that blames the gateway for the store sends its reader the wrong way."""
        if client is self._client:
            return self.unreachable(e)
        parts = urlsplit(url)
        reason = str(e) or type(e).__name__
        return Unavailable(
            f"cannot reach the artifact store at {parts.scheme}://{parts.netloc} ({reason}), "
            "where the gateway sent this transfer; is the object store (S3, MinIO) up, and "
            "is the gateway's LEDGERFLOW_S3_ENDPOINT an address this client can reach?"
        )

    def _refused(
        self, client: httpx.Client, response: httpx.Response, what: str
    ) -> LedgerflowError:
        """An error answer: the gateway's, told for this client; an object store's as is."""
        return self.error(response, what) if client is self._client else error_from(response, what)

    def upload(self, url: str, source: Path | bytes) -> Any:
        """PUT a file's bytes to `url` (gateway-relative, or an absolute presigned URL)."""
        client, target = self._url(url)
        try:
            if isinstance(source, bytes):
                response = client.put(target, content=source)
            else:
                with open(source, "rb") as f:  # streamed, with a Content-Length (S3 needs it)
                    response = client.put(target, content=f)
        except httpx.TransportError as e:
            raise self._unreachable(client, target, e) from None
        if response.status_code >= 400:
            raise self._refused(client, response, f"uploading to {url}")
        return response.json() if response.content else None

    def download(self, url: str, dest: Path) -> Path:
        """GET `url` into `dest`, written to a temporary name and moved into place."""
        client, target = self._url(url)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        try:
            with client.stream("GET", target) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._refused(client, response, f"downloading {url}")
                with open(part, "wb") as out:
                    for chunk in response.iter_bytes(_CHUNK):
                        out.write(chunk)
        except httpx.TransportError as e:
            part.unlink(missing_ok=True)
            raise self._unreachable(client, target, e) from None
        part.replace(dest)
        return dest
