"""Records as they travel: the wire models of the answers the gateway writes and the
remote client reads back.

A read-model record (`ledgerflow.events.entities`, `webhook_entities`) is a frozen
dataclass; its wire model is the pydantic model the gateway answers with and the OpenAPI
document shows. The fields are declared once, on the record: `from_record` builds the
wire model's fields from the dataclass, so a field added to a record travels without a
second declaration, and the remote mode rebuilds the very object the embedded mode
returns (`RecordOut.entity()`).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Collection, Mapping
from typing import Any, ClassVar, Generic, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, create_model
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

E = TypeVar("E")
M = TypeVar("M", bound="RecordOut[Any]")


class Out(BaseModel):
    """Base of answers' wire models: built from a record's attributes, non-finite numbers
    as the strings "NaN", "Infinity" and "-Infinity" so the JSON stays standard."""

    model_config = ConfigDict(from_attributes=True, ser_json_inf_nan="strings")

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The document says so too: where a number is, one of those strings may be."""
        schema = handler(core_schema)
        _non_finite_allowed(handler.resolve_ref_schema(schema))
        return schema


class RecordOut(Out, Generic[E]):
    """The wire model of the record `E`; its fields come from `E` (see `from_record`)."""

    RECORD: ClassVar[Callable[..., Any]]

    def entity(self) -> E:
        """The record again, nested wire models included (a run's info, a model's
        latest versions)."""
        fields = type(self).model_fields
        return cast(E, self.RECORD(**{name: _record(getattr(self, name)) for name in fields}))


NON_FINITE = ("NaN", "Infinity", "-Infinity")


def _non_finite_allowed(schema: Any) -> None:
    """Turn every `{"type": "number"}` in `schema` (in place, nested models aside: their
    own classes do theirs) into a number or one of the non-finite strings."""
    if isinstance(schema, list):
        for item in schema:
            _non_finite_allowed(item)
        return
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "number":
        del schema["type"]
        schema["anyOf"] = [{"type": "number"}, {"type": "string", "enum": list(NON_FINITE)}]
        return
    for key in ("properties", "patternProperties"):
        for sub in schema.get(key, {}).values():
            _non_finite_allowed(sub)
    for key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf", "prefixItems"):
        if key in schema:
            _non_finite_allowed(schema[key])


def _record(value: Any) -> Any:
    if isinstance(value, RecordOut):
        return value.entity()
    if isinstance(value, list) and value and isinstance(value[0], RecordOut):
        return [_record(v) for v in value]
    return value


def from_record(
    record: type[E],
    *,
    exclude: Collection[str] = (),
    types: Mapping[str, Any] | None = None,
    descriptions: Mapping[str, str] | None = None,
    defaults: bool = False,
) -> Callable[[type[M]], type[M]]:
    """Class decorator: the declared `RecordOut[record]` subclass, with a field for each of
    the dataclass `record`'s fields, in its order and of its type.

    `exclude` leaves fields out (a webhook's secret); `types` replaces a field's type (a
    nested record by its wire model); `descriptions` documents fields in the OpenAPI
    document. Every field is required on the wire unless `defaults`, where the record's
    defaults are kept (so an answer from an older gateway that lacks a newer field still
    reads).
    """
    hints = typing.get_type_hints(record)
    types = types or {}
    descriptions = descriptions or {}
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cast(Any, record)):
        if f.name in exclude:
            continue
        extra: dict[str, Any] = {}
        if f.name in descriptions:
            extra["description"] = descriptions[f.name]
        if defaults and f.default is not dataclasses.MISSING:
            extra["default"] = f.default
        elif defaults and f.default_factory is not dataclasses.MISSING:
            extra["default_factory"] = f.default_factory
        fields[f.name] = (types.get(f.name, hints[f.name]), Field(**extra))

    def build(declared: type[M]) -> type[M]:
        model = create_model(
            declared.__name__,
            __base__=declared,
            __module__=declared.__module__,
            __doc__=declared.__doc__,
            **fields,
        )
        model.RECORD = record
        return model

    return build
