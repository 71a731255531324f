"""What the API document states of fields whose checks live in the domains.

The checks (`ledgerflow.events.limits` and each domain's `decide`) enforce names,
versions and paths with messages of their own; the types here put the same rules in
the OpenAPI document as JSON Schema keywords (patterns from the same constants), so a
client knows what is accepted before it asks, and validation stays where it is.
tests/contract/test_rest_contract.py holds the two together. Kept apart from `limits`,
which the SDK imports at start, because this needs pydantic.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field
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


def _not_a_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("expected a whole number, not true or false")
    return value


WholeNumber = Annotated[int, BeforeValidator(_not_a_bool)]
"""An integer that JSON's `true` and `false` are not (pydantic would take them as 1 and 0);
an integral `5.0` is, as JSON Schema's `integer` says."""
