"""The gateway's gRPC API (`ledgerflow.v1.Ledgerflow`): ingest, hot reads, live events,
and the gateway's commands.

gRPC serves the paths where REST costs too much: a client-streaming `Ingest`
for metric batches at high rates (one call, many batches, no per-request HTTP
overhead), unary reads, and a server-streaming `Subscribe`. `Execute` takes any
command the gateway offers over REST, by its class name with its fields as JSON,
from the same registry the REST routes are made from (`command_registry`), so a new
command needs no code here. Errors come back as
gRPC status codes chosen by the `LedgerflowError` subclass, with its message as
the details and its code in the `ledgerflow-error-code` trailing metadata
(`grpc_errors`).

With auth on, every call carries `authorization` metadata (HTTP's `Basic` or `Bearer`
value) and each method declares what its caller needs (`grpc_auth`): reads need READ on
what they read, `Ingest` what REST's ingest needs (run telemetry on runs the caller may
EDIT, stamped with the caller), `Execute` the command's `NEEDS` with the caller as the
actor, and `Subscribe` sends only the events the caller may read.

Threads: grpcio's sync server runs each call on a worker thread, and a
`Subscribe` keeps its thread for as long as it lasts, so subscriptions are
capped (`max_subscribers`) below the pool size to leave threads for the reads.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from types import SimpleNamespace
from typing import Any

import grpc
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, select

from ledgerflow.events.codec import decode
from ledgerflow.events.commands import ADMIN, Command, invalid_input, on
from ledgerflow.events.envelope import Event
from ledgerflow.events.errors import CorruptEvent, InvalidInput, LedgerflowError, Unavailable
from ledgerflow.events.log import Checkpoint
from ledgerflow.events.permissions import Level
from ledgerflow.services.auth.principal import Principal
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.gateway.auth import check, check_command
from ledgerflow.services.gateway.cache import ReadCache
from ledgerflow.services.gateway.command_registry import offered
from ledgerflow.services.gateway.grpc_auth import authorization, guard_rpcs, rpc
from ledgerflow.services.gateway.grpc_errors import (
    TooManySubscribers,
    abort,
    internal,
    streaming,
    unary,
)
from ledgerflow.services.gateway.grpc_messages import (
    event_message,
    metric_message,
    run_message,
    version_message,
)
from ledgerflow.services.gateway.hub import Hub
from ledgerflow.services.gateway.ingest_routes import authorize
from ledgerflow.services.gateway.limits import Rates
from ledgerflow.services.gateway.metrics import GatewayMetrics
from ledgerflow.services.gateway.proto import ledgerflow_pb2 as pb
from ledgerflow.services.gateway.proto import ledgerflow_pb2_grpc as pb_grpc
from ledgerflow.services.gateway.sse import shown_to
from ledgerflow.services.gateway.stream_guard import StreamGuard
from ledgerflow.services.projector.queries import Queries
from ledgerflow.services.projector.registry_queries import RegistryQueries
from ledgerflow.services.projector.tables import DEAD_LETTERS as DL
from ledgerflow.services.tls import Tls

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
ENVELOPE_FIELDS = {"id": str, "type": str, "stream": str, "time": int, "v": int, "actor": str}
_READ_RUN = on("run", "run_id", Level.READ)
_READ_MODEL = on("model", "name", Level.READ)
_READ_EXPERIMENT = on("experiment", "experiment_id", Level.READ)


class CallMetrics(grpc.ServerInterceptor):  # type: ignore[misc]
    """Counts every call by method and status code in the gateway's metrics, and times
    the unary ones: the gRPC side of `RequestMetrics`."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self.metrics = metrics

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        method = details.method
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=self._unary(method, handler.unary_unary))
        if handler.unary_stream is not None:
            return handler._replace(unary_stream=self._stream(method, handler.unary_stream))
        return handler

    def _unary(self, method: str, call: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        def counted(request: Any, context: Any) -> Any:
            start = time.perf_counter()
            try:
                return call(request, context)
            finally:
                self.metrics.observe_grpc(method, _code(context), time.perf_counter() - start)

        return counted

    def _stream(self, method: str, call: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        def counted(request: Any, context: Any) -> Iterator[Any]:
            try:
                yield from call(request, context)
            finally:  # ended, failed, or cancelled by the client
                code = "CANCELLED" if not context.is_active() else _code(context)
                self.metrics.observe_grpc(method, code, None)

        return counted


def _code(context: Any) -> str:
    """The status a call ended with: what the servicer set or aborted with, else OK."""
    code = context.code()
    return "OK" if code is None else code.name


def serve(
    backend: Backend,
    hub: Hub,
    host: str = "127.0.0.1",
    port: int = 50051,
    *,
    cache: ReadCache | None = None,
    max_workers: int = 32,
    max_subscribers: int | None = None,
    rates: Rates | None = None,
    tls: Tls | None = None,
    metrics: GatewayMetrics | None = None,
) -> grpc.Server:
    """Start the gRPC server on host:port (started when this returns; `.stop(grace)` it),
    over TLS with `tls`.
    With auth on, `rates` are the per-user buckets (shared with the REST app of the
    process; made here if None). `metrics`: the REST app's, to count calls in."""
    subscribers = max_subscribers if max_subscribers is not None else max(1, max_workers // 2)
    servicer = LedgerflowServicer(
        backend, hub, cache=cache, max_subscribers=subscribers, rates=rates
    )
    guard_rpcs(servicer)  # before listening: an RPC that checks nothing never serves
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
        interceptors=[CallMetrics(metrics)] if metrics is not None else [],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    pb_grpc.add_LedgerflowServicer_to_server(servicer, server)
    try:
        address = f"{host}:{port}"
        if tls is None:
            bound = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, tls.grpc_credentials())
    except RuntimeError as e:
        bound, reason = 0, str(e)
    else:
        reason = "the address is in use or not on this machine"
    if not bound:
        server.stop(None)
        raise Unavailable(f"cannot listen for gRPC on {host}:{port}: {reason}")
    server.start()
    server.bound_port = bound  # the real one when port was 0
    return server


class LedgerflowServicer:
    """The `ledgerflow.v1.Ledgerflow` methods over a backend, a hub and maybe a cache. Each
    says what its caller needs (`@rpc`, `grpc_auth`) and gets the caller it verified."""

    def __init__(
        self,
        backend: Backend,
        hub: Hub,
        *,
        cache: ReadCache | None,
        max_subscribers: int,
        rates: Rates | None = None,
    ) -> None:
        self.backend = backend
        self._hub = hub
        self._runs: Queries = cache.queries() if cache else backend.queries
        self._registry: RegistryQueries = (
            cache.registry_queries() if cache else backend.registry.queries
        )
        self._max_subscribers = max_subscribers
        self._slots = threading.BoundedSemaphore(max_subscribers)
        self._rates = rates or Rates.of(backend.settings)

    def _take(self, caller: Principal, n: int, ingest: bool) -> None:
        """With auth on, count against the caller's rate (RESOURCE_EXHAUSTED beyond it)."""
        if self.backend.settings.auth and n:
            if ingest:
                self._rates.ingest.take(caller.user, n, what="ingested events")
            else:
                self._rates.writes.take(caller.user, n, what="writes")

    # -- ingest -----------------------------------------------------------------------

    @rpc("only run telemetry, on runs the caller may EDIT, stamped with the caller")
    def Ingest(
        self, request_iterator: Iterator[pb.EventBatch], context: Any, caller: Principal
    ) -> pb.IngestReply:
        progress = _Progress()
        try:
            return self._ingest(request_iterator, progress, caller)
        except LedgerflowError as e:
            # Earlier batches are stored: project them, and say how far they go, so the
            # client can resend the rest (ids make resending what is stored a no-op).
            if progress.stored:
                with contextlib.suppress(LedgerflowError):
                    self._project(progress.stored)
            abort(context, e, progress.metadata())
        except Exception:
            internal(context, "Ingest")
        raise AssertionError("unreachable: context.abort raises")

    def _ingest(
        self, batches: Iterator[pb.EventBatch], progress: _Progress, caller: Principal
    ) -> pb.IngestReply:
        ids: list[str] = []
        for batch in batches:
            progress.batches += 1
            self._take(caller, len(batch.events), ingest=True)
            decoded = [_event(text, progress.batches, i) for i, text in enumerate(batch.events, 1)]
            decoded = authorize(self.backend, caller, decoded)
            recorded = self.backend.log.append(decoded)
            progress.stored = progress.stored.advance_all(recorded)
            progress.events += len(recorded)
            ids.extend(e.id for e in decoded)
        if progress.stored:
            self._project(progress.stored)
        rejected, rejection = self._rejections(ids)
        return pb.IngestReply(
            events=progress.events,
            batches=progress.batches,
            checkpoint=progress.stored.encode(),
            rejected=rejected,
            rejection=rejection,
        )

    def _project(self, stored: Checkpoint) -> None:
        """Read-your-writes: return once the views include `stored`."""
        self.backend.projector.wait_for(stored, self.backend.settings.projection_timeout_s)

    def _rejections(self, ids: list[str]) -> tuple[int, str]:
        """How many of `ids` the projector dead-lettered, and the first one's reason."""
        count, first = 0, ""
        with self.backend.projector.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                where = DL.c.event_id.in_(chunk)
                n = conn.execute(select(func.count()).select_from(DL).where(where)).scalar_one()
                if n and not first:
                    row = conn.execute(
                        select(DL.c.event_id, DL.c.type, DL.c.reason).where(where).limit(1)
                    ).one()
                    first = f"{row.type} {row.event_id}: {row.reason}"
                count += int(n)
        return count, first

    # -- reads ------------------------------------------------------------------------

    @rpc(_READ_RUN)
    @unary
    def GetRun(self, request: pb.GetRunRequest, context: Any, caller: Principal) -> pb.Run:
        return run_message(self._runs.get_run(_required(request.run_id, "run_id")))

    @rpc("READ on every experiment in experiment_ids")
    @unary
    def SearchRuns(
        self, request: pb.SearchRunsRequest, context: Any, caller: Principal
    ) -> pb.SearchRunsReply:
        for experiment_id in request.experiment_ids:
            named = SimpleNamespace(experiment_id=experiment_id)
            check(self.backend, caller, _READ_EXPERIMENT, named)
        page = self._runs.search_runs(
            list(request.experiment_ids),
            request.filter or None,
            run_view_type=request.run_view_type or "ACTIVE_ONLY",
            max_results=request.max_results or 1000,
            order_by=list(request.order_by) or None,
            page_token=request.page_token or None,
        )
        return pb.SearchRunsReply(
            runs=[run_message(r) for r in page], next_page_token=page.token or ""
        )

    @rpc(_READ_RUN)
    @unary
    def GetMetricHistory(
        self, request: pb.GetMetricHistoryRequest, context: Any, caller: Principal
    ) -> pb.MetricHistory:
        history = self._runs.get_metric_history(
            _required(request.run_id, "run_id"),
            _required(request.key, "key"),
            max_points=request.max_points if request.HasField("max_points") else None,
        )
        return pb.MetricHistory(metrics=[metric_message(m) for m in history])

    @rpc(_READ_MODEL)
    @unary
    def GetModelVersion(
        self, request: pb.GetModelVersionRequest, context: Any, caller: Principal
    ) -> pb.ModelVersion:
        name = _required(request.name, "name")
        selector = request.WhichOneof("selector")
        if selector == "alias":
            found = self._registry.get_model_version_by_alias(name, request.alias)
        elif selector == "version":
            found = self._registry.get_model_version(name, request.version)
        else:
            raise InvalidInput("say which version: set `alias` or `version`", field="selector")
        return version_message(found)

    @rpc(_READ_MODEL)
    @unary
    def GetLatestVersions(
        self, request: pb.GetLatestVersionsRequest, context: Any, caller: Principal
    ) -> pb.ModelVersions:
        name = _required(request.name, "name")
        self._registry.require_model(name)
        found = self._registry.get_latest_versions(name, list(request.stages) or None)
        return pb.ModelVersions(versions=[version_message(v) for v in found])

    # -- events -----------------------------------------------------------------------

    @rpc("any identity; only events on what the caller may READ are sent")
    @streaming
    def Subscribe(
        self, request: pb.SubscribeRequest, context: Any, caller: Principal
    ) -> Iterator[pb.EventMessage]:
        if not self._slots.acquire(blocking=False):
            raise TooManySubscribers(
                f"this gateway already serves {self._max_subscribers} gRPC subscriptions; "
                "retry later, subscribe over Server-Sent Events, or use another gateway"
            )
        try:
            show = shown_to(self.backend, caller)
            guard = StreamGuard(self.backend, caller, authorization(context))
            sub = self._hub.subscribe(request.after or None, list(request.types) or None)
            context.add_callback(sub.close)  # a client that goes away ends it at once
            try:
                while context.is_active() and not sub.closed:
                    if guard.due():  # ends the call UNAUTHENTICATED / PERMISSION_DENIED
                        guard.check()
                    got = sub.next(guard.ttl_s)
                    if got is not None and show(got):
                        yield event_message(got)
            finally:
                sub.close()
        finally:
            self._slots.release()

    # -- commands ---------------------------------------------------------------------

    @rpc("the command's NEEDS, as on its REST route, checked once its fields are read")
    @unary
    def Execute(
        self, request: pb.CommandRequest, context: Any, caller: Principal
    ) -> pb.CommandReply:
        cls, domain = offered(_required(request.command, "command"))
        self._take(caller, 1, ingest=False)
        try:
            command = cls.model_validate_json(request.body or b"{}")
        except ValidationError as e:  # not JSON at all; the fields' errors are InvalidInput
            raise invalid_input(e.errors()) from None
        check_command(self.backend, caller, cls.NEEDS or ADMIN, command)
        result = domain.service(self.backend).execute(command, actor=caller.actor)
        return pb.CommandReply(body=_answer(cls).dump_json(cls.ANSWER.encode(result)))


@functools.cache
def _answer(cls: type[Command[Any]]) -> TypeAdapter[Any]:
    """How the REST route writes the command's answer (`null` when it has none)."""
    schema = cls.ANSWER.schema
    return TypeAdapter(Any if schema is None else schema)


class _Progress:
    """How much of an ingest call is stored so far."""

    def __init__(self) -> None:
        self.batches = 0
        self.events = 0
        self.stored = Checkpoint()

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (
            ("ledgerflow-stored-batches", str(max(self.batches - 1, 0))),
            ("ledgerflow-stored-events", str(self.events)),
            ("ledgerflow-stored-checkpoint", self.stored.encode()),
        )


def _required(value: str, field: str) -> str:
    if not value:
        raise InvalidInput(f"{field} is required", field=field)
    return value


def _event(text: str, batch: int, index: int) -> Event:
    """Decode one ingested event, or say which one is wrong and how."""
    where = f"batch {batch}, event {index}"
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise InvalidInput(f"{where}: not JSON ({e})", field="events") from None
    if not isinstance(doc, dict):
        raise InvalidInput(f"{where}: expected a JSON object (an event envelope)", field="events")
    for name, kind in ENVELOPE_FIELDS.items():
        value = doc.get(name)
        if not isinstance(value, kind) or isinstance(value, bool) or value == "":
            raise InvalidInput(
                f"{where} (id {doc.get('id')!r}): field {name!r} must be a non-empty "
                f"{kind.__name__}, got {value!r}",
                field=name,
            )
    if not isinstance(doc.get("data"), dict):
        raise InvalidInput(
            f"{where} (id {doc['id']!r}): field 'data' must be an object", field="data"
        )
    try:
        event = decode(text)
    except CorruptEvent as e:
        raise InvalidInput(f"{where} (id {doc['id']!r}): {e.message}", field="data") from None
    if event.stream != event.data.stream():
        raise InvalidInput(
            f"{where} (id {event.id!r}): stream {event.stream!r} does not match its data, "
            f"which belongs to {event.data.stream()!r}",
            field="stream",
        )
    return event
