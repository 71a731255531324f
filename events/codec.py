"""Serialization of events to JSON and back, with upcasting of old payload versions.

The wire form of an event is its envelope plus `data`, the payload as JSON.
Decoding looks the type up in a registry, lifts an old payload to the current
version through the registered upcasters, then validates it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from ledgerflow.events.auth_payloads import AUTH_PAYLOADS
from ledgerflow.events.bundle_payloads import BUNDLE_PAYLOADS
from ledgerflow.events.chain import document
from ledgerflow.events.deployment_payloads import DEPLOYMENT_PAYLOADS, TRAFFIC_PAYLOADS
from ledgerflow.events.envelope import Event, stored_event
from ledgerflow.events.errors import CorruptEvent, InvalidInput
from ledgerflow.events.job_payloads import JOB_PAYLOADS
from ledgerflow.events.logged_model_payloads import LOGGED_MODEL_PAYLOADS
from ledgerflow.events.model_payloads import MODEL_PAYLOADS
from ledgerflow.events.payloads import ALL_PAYLOADS, Payload
from ledgerflow.events.webhook_payloads import WEBHOOK_PAYLOADS

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
_SURROGATE = re.compile("[\ud800-\udfff]")


class EventRegistry:
    """Maps stable type names to payload classes, and holds the upcasters between versions."""

    def __init__(self, payloads: Iterable[type[Payload]] = ()) -> None:
        self._types: dict[str, type[Payload]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        self._current: dict[str, tuple[int, Callable[[str | bytes], Payload]]] = {}
        for cls in payloads:
            self.register(cls)

    def register(self, cls: type[Payload]) -> None:
        if not cls.TYPE:
            raise ValueError(f"{cls.__name__} has no TYPE")
        if cls.TYPE in self._types and self._types[cls.TYPE] is not cls:
            raise ValueError(f"event type {cls.TYPE!r} is registered twice")
        self._types[cls.TYPE] = cls
        self._current.pop(cls.TYPE, None)

    def current(self, type_: str) -> tuple[int, Callable[[str | bytes], Payload]] | None:
        """The current version of `type_`'s payload and the validator of its JSON (what
        `model_validate_json` calls), or None for a type not registered: a log's reader
        decodes most payloads through it without the general path's checks."""
        found = self._current.get(type_)
        if found is None:
            cls = self._types.get(type_)
            if cls is None:
                return None
            found = self._current[type_] = (cls.VERSION, cls.__pydantic_validator__.validate_json)
        return found

    def upcaster(self, type_: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Register a function lifting `type_` payloads from `from_version` to the next one."""

        def decorate(fn: Upcaster) -> Upcaster:
            self._upcasters[(type_, from_version)] = fn
            return fn

        return decorate

    def payload_class(self, type_: str) -> type[Payload]:
        try:
            return self._types[type_]
        except (KeyError, TypeError):  # TypeError: a list or a dict where the name should be
            raise CorruptEvent(f"unknown event type {type_!r:.80}") from None

    def types(self) -> list[str]:
        return sorted(self._types)

    def upcast(self, type_: str, version: int, data: dict[str, Any]) -> dict[str, Any]:
        target = self.payload_class(type_).VERSION
        if version > target:
            raise CorruptEvent(
                f"{type_} payload version {version} is newer than this build knows "
                f"(up to {target}); upgrade Ledgerflow to read it"
            )
        while version < target:
            step = self._upcasters.get((type_, version))
            if step is None:
                raise CorruptEvent(f"no upcaster for {type_} from version {version}")
            data = step(data)
            version += 1
        return data


REGISTRY = EventRegistry(
    (
        *ALL_PAYLOADS,
        *MODEL_PAYLOADS,
        *WEBHOOK_PAYLOADS,
        *JOB_PAYLOADS,
        *BUNDLE_PAYLOADS,
        *DEPLOYMENT_PAYLOADS,
        *TRAFFIC_PAYLOADS,
        *AUTH_PAYLOADS,
        *LOGGED_MODEL_PAYLOADS,
    )
)


def encode_data(payload: Payload) -> str:
    """The payload as JSON; InvalidInput if it holds text that is not Unicode (a lone
    surrogate, which a JSON body can spell as "\\ud800"): no log can store that."""
    try:
        text = payload.model_dump_json()
    except PydanticSerializationError:
        text = None
    # Pydantic refuses a surrogate in a value but writes one in a key as U+FFFD: look
    # closer only then, so the hot path (metric batches) pays one scan of the text.
    if text is None or "\ufffd" in text:
        for name, value in payload.model_dump().items():
            where = _not_unicode(value, name)
            if where is not None:
                raise InvalidInput(
                    f"{payload.TYPE} payload: {where} holds text that is not valid Unicode "
                    "(a lone surrogate, such as \\ud800); nothing was stored",
                    field=name,
                )
    if text is None:
        return payload.model_dump_json()  # fails again, with pydantic's own reason
    return text


def _not_unicode(value: object, path: str) -> str | None:
    """Where in `value` (a payload field's dump, at `path`) the first text holding a lone
    surrogate is, or None."""
    if isinstance(value, str):
        return path if _SURROGATE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and _SURROGATE.search(key):
                return f"a key of {path}"
            if (found := _not_unicode(item, f"{path}[{key!r}]")) is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            if (found := _not_unicode(item, f"{path}[{i}]")) is not None:
                return found
    return None


def encode(event: Event) -> bytes:
    """The whole event as one JSON document (used on logs that store a single blob); the
    form the hash chain covers (`ledgerflow.events.chain.document`)."""
    return document(
        event.id, event.type, event.stream, event.time, event.v, event.actor, event.trace,
        encode_data(event.data).encode(),
    )  # fmt: skip


def decode_data(
    type_: str, version: int, data: str | bytes | dict[str, Any], registry: EventRegistry = REGISTRY
) -> Payload:
    cls = registry.payload_class(type_)
    if isinstance(version, bool) or not isinstance(version, int):
        raise CorruptEvent(f"{type_} payload version {version!r:.40} is not a whole number")
    if not isinstance(data, str | bytes | dict):
        raise CorruptEvent(f"{type_} payload is {type(data).__name__}, not JSON text")
    try:
        if version == cls.VERSION and not isinstance(data, dict):
            return cls.model_validate_json(data)
        raw = json.loads(data) if not isinstance(data, dict) else data
        if not isinstance(raw, dict):
            raise CorruptEvent(f"{type_} payload is not a JSON object")
        return cls.model_validate(registry.upcast(type_, version, raw))
    except ValidationError as e:
        if any(err["type"] == "json_invalid" for err in e.errors()):
            raise CorruptEvent(f"undecodable {type_} payload: {e.errors()[0]['msg']}") from None
        raise CorruptEvent(f"invalid {type_} payload: {_first_errors(e)}") from None
    except ValueError as e:  # json.JSONDecodeError is a ValueError
        raise CorruptEvent(f"undecodable {type_} payload: {e}") from None
    except RecursionError:  # json.loads on "[[[[..."
        raise CorruptEvent(f"undecodable {type_} payload: nested too deeply") from None


def decode_row(
    *,
    id: str,
    type: str,
    stream: str,
    time: int,
    v: int,
    actor: str,
    trace: str | None,
    data: str | bytes | dict[str, Any],
    registry: EventRegistry = REGISTRY,
) -> Event:
    return decode_columns(id, type, stream, time, v, actor, trace, data, registry)


def decode_columns(
    id: str,
    type: str,
    stream: str,
    time: int,
    v: int,
    actor: str,
    trace: str | None,
    data: str | bytes | dict[str, Any],
    registry: EventRegistry = REGISTRY,
) -> Event:
    """`decode_row` with the columns in the order the logs store them, passed by position:
    a log's reader calls it once per event."""
    if not _plain(id, type, stream, actor, time, v, trace):
        wrong = _envelope_error(id=id, type=type, stream=stream, time=time, v=v, actor=actor,
                                trace=trace)  # fmt: skip
        if wrong:
            raise CorruptEvent(f"invalid event envelope: {wrong}")
    elif data.__class__ is str and (current := registry.current(type)) and current[0] == v:
        # What the logs write, at the current version: validated straight from the JSON
        # (decode_data's checks and wrappers cost a fifth of decoding). A payload it refuses
        # goes the general way below, which says why.
        try:
            payload = current[1](data)
        except ValidationError:
            pass
        else:
            return stored_event(type, stream, payload, actor, id, time, v, trace)
    payload = decode_data(type, v, data, registry)
    return Event(
        id=id,
        type=type,
        stream=stream,
        time=time,
        v=payload.VERSION,
        actor=actor,
        trace=trace,
        data=payload,
    )


def decode(blob: bytes | str, registry: EventRegistry = REGISTRY) -> Event:
    """Inverse of `encode`."""
    try:
        doc = json.loads(blob)
        if not isinstance(doc, dict):
            raise CorruptEvent("event is not a JSON object")
        fields = {k: doc[k] for k in ("id", "type", "stream", "time", "v", "actor", "data")}
    except KeyError as e:
        raise CorruptEvent(f"undecodable event: it has no {e.args[0]!r} field") from None
    except ValueError as e:
        raise CorruptEvent(f"undecodable event: {e}") from None
    except RecursionError:  # "[[[[..."
        raise CorruptEvent("undecodable event: JSON nested too deeply") from None
    return decode_row(**fields, trace=doc.get("trace"), registry=registry)


def _plain(*fields: object) -> bool:
    """Whether (id, type, stream, actor, time, v, trace) have exactly the types every log
    writes, so that `_envelope_error` finds nothing: the common case, in one expression."""
    id_, type_, stream, actor, time, v, trace = fields
    return (
        type(id_) is str and type(type_) is str and type(stream) is str and type(actor) is str
        and type(time) is int and type(v) is int and (trace is None or type(trace) is str)
    )  # fmt: skip


def _envelope_error(**fields: object) -> str:
    """What is wrong with the envelope's fields ("" if nothing): `Event` does not check
    its types, and every reader relies on them."""
    for name, value in fields.items():
        if name in ("time", "v"):
            ok = isinstance(value, int) and not isinstance(value, bool)
            want = "a whole number"
        else:
            ok = isinstance(value, str) or (name == "trace" and value is None)
            want = "text" if name != "trace" else "text or null"
        if not ok:
            return f"{name} is {type(value).__name__} {value!r:.40}, expected {want}"
    return ""


def _first_errors(e: ValidationError, limit: int = 3) -> str:
    parts = []
    for err in e.errors()[:limit]:
        loc = ".".join(str(x) for x in err["loc"])
        parts.append(f"{loc}: {err['msg']}")
    more = e.error_count() - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
