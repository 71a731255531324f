"""OpenTelemetry spans, and the W3C trace context that travels in event envelopes.

Tracing is on when `LEDGERFLOW_OTLP_ENDPOINT` is set (`configure` installs an
exporter) or when the application installed a tracer provider of its own. Off,
every helper here costs one dictionary lookup and never imports OpenTelemetry,
so `import ledgerflow` and the hot logging paths stay as fast as without it.

Events carry the `traceparent` of the span that produced them (`Event.trace`);
the projector starts its span for an event as a child of that context, so one
trace follows a metric from the SDK call through the log to the view.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from ledgerflow.events.errors import InvalidInput

P = ParamSpec("P")
R = TypeVar("R")
TRACER = "ledgerflow"
_configured_lock = threading.Lock()
_configured: str | None = None


def _trace_api() -> Any | None:
    """The OpenTelemetry trace API if a real tracer provider is installed, else None."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None  # nobody in this process has touched OpenTelemetry: tracing is off
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return None  # the API is loaded but nobody installed a provider
    return trace


def enabled() -> bool:
    return _trace_api() is not None


@contextlib.contextmanager
def span(
    name: str, attributes: Mapping[str, Any] | None = None, *, parent: str | None = None
) -> Iterator[Any]:
    """A span around the block (nothing when tracing is off). `parent` is a W3C
    traceparent to continue, e.g. the one an event carries."""
    trace = _trace_api()
    if trace is None:
        yield None
        return
    context = None
    if parent:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        context = TraceContextTextMapPropagator().extract({"traceparent": parent})
    tracer = trace.get_tracer(TRACER)
    with tracer.start_as_current_span(
        name, context=context, attributes=dict(attributes or {})
    ) as current:
        yield current


def traced(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function so each call is a span named `name`."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @wraps(fn)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            if _trace_api() is None:
                return fn(*args, **kwargs)
            with span(name):
                return fn(*args, **kwargs)

        return call

    return wrap


def traceparent() -> str | None:
    """The W3C traceparent of the current span, for an event envelope or an HTTP header."""
    trace = _trace_api()
    if trace is None:
        return None
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def configure(endpoint: str | None, service: str) -> bool:
    """Install a tracer provider exporting to `endpoint` (an OTLP/HTTP collector URL, or
    `console` to print spans). Returns whether tracing is on. Once per process; an
    application's own provider is left alone."""
    global _configured
    if not endpoint:
        return enabled()
    with _configured_lock:
        if _configured is not None:
            return True
        try:
            from opentelemetry import trace
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
        except ImportError as e:
            raise InvalidInput(
                f"LEDGERFLOW_OTLP_ENDPOINT is set but OpenTelemetry is missing ({e}); "
                "pip install 'ledgerflow[tracing]'",
                field="LEDGERFLOW_OTLP_ENDPOINT",
            ) from None
        if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            _configured = "application"
            return True
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        if endpoint == "console":
            exporter: Any = ConsoleSpanExporter()
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            url = endpoint.rstrip("/")
            exporter = OTLPSpanExporter(
                endpoint=url if url.endswith("/v1/traces") else url + "/v1/traces"
            )
        provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        _configured = endpoint
        return True
