"""What the API document states of fields whose checks live in the domains.

The checks (`ledgerflow.events.limits` and each domain's `decide`) enforce names,
versions and paths with messages of their own; the types here put the same rules in
the OpenAPI document as JSON Schema keywords (patterns from the same constants), so a
client knows what is accepted before it asks, and validation stays where it is.
tests/contract/test_rest_contract.py holds the two together. Kept apart from `limits`,
which the SDK imports at start, because this needs pydantic.
"""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, Field, ValidationInfo, field_validator
from pydantic.config import JsonDict

from ledgerflow.events.limits import (
    ALIAS_PATTERN,
    KEY_PATTERN,
    MAX_EXPERIMENT_NAME_LENGTH,
    MAX_KEY_LENGTH,
    MODEL_NAME_PATTERN,
    NOT_BLANK,
    PRINCIPAL_PATTERN,
    PRINCIPAL_REF_PATTERN,
    RESERVED_ALIAS_PATTERN,
    RUN_ID_PATTERN,
    SLUG_PATTERN,
    URL_PATTERN,
    VERSION_PATTERN,
)


def stated(**schema: Any) -> Any:
    """A field's JSON Schema keywords, for the document only (no validation)."""
    return Field(json_schema_extra=schema)


KEY: JsonDict = {"pattern": KEY_PATTERN, "maxLength": MAX_KEY_LENGTH}
"""A metric, param or tag name (`check_key`)."""
EXPERIMENT_NAME: JsonDict = {"pattern": NOT_BLANK, "maxLength": MAX_EXPERIMENT_NAME_LENGTH}
VERSION: JsonDict = {"pattern": VERSION_PATTERN, "minimum": 1, "maximum": 10**18 - 1}
"""A model version, as a number or as its text."""
MODEL_NAME: JsonDict = {"pattern": MODEL_NAME_PATTERN, "maxLength": 256}
ALIAS: JsonDict = {"pattern": ALIAS_PATTERN, "not": {"pattern": RESERVED_ALIAS_PATTERN}}
SLUG: JsonDict = {"pattern": SLUG_PATTERN, "maxLength": 128}
PRINCIPAL: JsonDict = {"pattern": PRINCIPAL_PATTERN, "maxLength": 128}
PRINCIPAL_REF: JsonDict = {"pattern": PRINCIPAL_REF_PATTERN}
PASSWORD: JsonDict = {"minLength": 8, "maxLength": 1024}
URL: JsonDict = {"pattern": URL_PATTERN, "maxLength": 2048}

Key = Annotated[str, stated(**KEY)]
ExperimentName = Annotated[str, stated(**EXPERIMENT_NAME)]
Version = Annotated[int | str, stated(**VERSION)]
ModelName = Annotated[str, stated(**MODEL_NAME)]
Alias = Annotated[str, stated(**ALIAS)]
Slug = Annotated[str, stated(**SLUG)]
"""A deployment's or a webhook's name."""
PrincipalName = Annotated[str, stated(**PRINCIPAL)]
"""A user's or a group's name."""
PrincipalRef = Annotated[str, stated(**PRINCIPAL_REF)]
Url = Annotated[str, stated(**URL)]
RunId = Annotated[str, stated(pattern=RUN_ID_PATTERN)]
"""A run id a client chooses (`check_run_id`)."""
Text = Annotated[str, stated(pattern=NOT_BLANK)]
"""Text that must hold more than whitespace (a URI, a source)."""


class StrictNumbers(BaseModel):
    """A request body whose numbers are numbers: JSON's `true` and `false` are refused
    where a field takes a number and no boolean (pydantic would read them as 1 and 0), as
    the document says (`integer` and `number` are not `boolean`). An integral `5.0` stays a
    whole number, as JSON Schema's `integer` allows."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name is not None:
            kinds = _kinds(cls.model_fields[info.field_name].annotation)
            if "number" in kinds and "bool" not in kinds:
                raise ValueError("expected a number, not true or false")
        return value


def _kinds(annotation: Any) -> set[str]:
    """What a field of this type takes as it is: "bool", "number", "other"."""
    if annotation is bool:
        return {"bool"}
    if annotation in (int, float):
        return {"number"}
    if annotation in (Any, object, None):
        return {"bool", "number", "other"}
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *meta = get_args(annotation)
        if any(isinstance(m, BeforeValidator) for m in meta):  # it makes its own value
            return {"bool", "number", "other"}
        return _kinds(inner)
    if origin in (Union, UnionType):
        return set().union(*(_kinds(a) for a in get_args(annotation)))
    return {"other"}
