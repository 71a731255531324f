"""Validation of names and values shared by every entry point (SDK, gateway).

The limits match MLflow's so that code moving between the two behaves the same.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping
from typing import Any

from ledgerflow.events.errors import InvalidInput

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_RUN_NAME_LENGTH = 250
MAX_RUN_LINK_LENGTH = 500  # MLflow's column

_KEY_RE = re.compile(r"^[\w\-./ :]+$")


_SPACE = r"\s\x1c-\x1f\x85"
"""What `str.strip` takes away: JSON Schema's `\\s` (ECMA-262) leaves out \x1c-\x1f, \x85."""
NOT_BLANK = rf"[^{_SPACE}]"
"""Some character other than whitespace (JSON Schema patterns search; they need no anchors)."""
_SEGMENT = r"(?:[\w\- :][\w\-. :]*|\.[\w\- :][\w\-. :]*|\.\.[\w\-. :]+)"
KEY_PATTERN = rf"^{_SEGMENT}(?:/{_SEGMENT}?)*$"
"""`check_key`: letters, digits, `_ - . / :` and space; relative; no `.` or `..` segment."""
SLUG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
"""A deployment's or a webhook's name."""
PRINCIPAL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@\-]*$"
"""A user's or a group's name."""
MODEL_NAME_PATTERN = rf"^[^{_SPACE}/@:](?:[^/@:]*[^{_SPACE}/@:])?$"
"""A registered model's name: no `/`, `@` or `:` (they would make models:/ URIs
ambiguous), no surrounding spaces."""
VERSION_PATTERN = r"^0*[1-9][0-9]{0,17}$"
"""A model version as text: a whole number from 1."""
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$"
"""A run id a client chooses: it names a folder of the artifact store, so letters, digits,
`_` and `-` only (the ids Ledgerflow and MLflow make are 32 hex digits)."""
_RUN_ID_RE = re.compile(RUN_ID_PATTERN)

PRINCIPAL_REF_PATTERN = r"^(?:user|group):[A-Za-z0-9][A-Za-z0-9_.@\-]*$"
"""`user:<name>` or `group:<name>`."""
URL_PATTERN = r"^[hH][tT][tT][pP][sS]?://[A-Za-z0-9][A-Za-z0-9.\-]*(?::[0-9]{1,4})?(?:/[!-~]*)?$"
"""An http(s) URL with a host and no spaces (a webhook's endpoint)."""
ALIAS_PATTERN = r"^[\w\-]{1,255}$"
RESERVED_ALIAS_PATTERN = r"^(?:[lL][aA][tT][eE][sS][tT]|[vV]\d+)$"
"""`latest` and `v<number>` already mean versions in models:/ URIs."""


def check_key(key: object, what: str) -> str:
    """A metric, param or tag name: letters, digits, `_ - . / : ` and space, no `..` escapes."""
    if not isinstance(key, str):
        raise InvalidInput(
            f"{what} name must be a string, got {type(key).__name__}: {key!r}", field=what
        )
    if not key:
        raise InvalidInput(f"{what} name must not be empty", field=what)
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(
            f"{what} name {key[:40]!r}... is {len(key)} characters; the limit is {MAX_KEY_LENGTH}",
            field=what,
        )
    if not _KEY_RE.match(key):
        raise InvalidInput(
            f"{what} name {key!r} has characters that are not allowed; use letters, digits, "
            "underscores, dashes, periods, spaces, colons and slashes",
            field=what,
        )
    if key.startswith("/") or any(part in ("..", ".") for part in key.split("/")):
        raise InvalidInput(
            f"{what} name {key!r} must be a relative name without '.' or '..' segments", field=what
        )
    return key


def check_value(value: object, what: str, key: str, limit: int) -> str:
    """Params and tags are stored as strings; anything with a str() is accepted up to `limit`."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        raise InvalidInput(
            f"{what} {key!r} has a value of {len(text)} characters; the limit is {limit}",
            field=key,
        )
    return text


def check_metric_value(key: str, value: object) -> float:
    """A metric value must be a real number; NaN and ±inf are accepted as such."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        # numpy scalars are numbers.Real; strings, None and containers are not.
        raise InvalidInput(
            f"metric {key!r} must be a number, got {type(value).__name__}: {value!r:.60}",
            field=key,
        )
    try:
        return float(value)
    except OverflowError:
        raise InvalidInput(
            f"metric {key!r} value {value} is too large for a 64-bit float", field=key
        ) from None


def check_step(step: object) -> int:
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise InvalidInput(f"metric step must be an integer, got {step!r}", field="step")
    s = int(step)
    if not -(2**63) <= s < 2**63:
        raise InvalidInput(f"metric step {s} does not fit in 64 bits", field="step")
    return s


def check_timestamp(ts: object) -> int:
    if isinstance(ts, bool) or not isinstance(ts, numbers.Real) or not math.isfinite(float(ts)):
        raise InvalidInput(f"timestamp must be epoch milliseconds, got {ts!r}", field="timestamp")
    return int(ts)  # type: ignore[call-overload, no-any-return]


def check_run_id(run_id: object) -> str:
    """A run id chosen by the client (`RUN_ID_PATTERN`)."""
    if not isinstance(run_id, str) or not _RUN_ID_RE.fullmatch(run_id):
        raise InvalidInput(
            f"run_id {run_id!r} is not a run id: 1 to 64 letters, digits, '_' or '-', "
            "starting with a letter or digit",
            field="run_id",
        )
    return run_id


def check_name(name: object, what: str, limit: int) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{what} must be a non-empty string, got {name!r}", field=what)
    if len(name) > limit:
        raise InvalidInput(f"{what} is {len(name)} characters; the limit is {limit}", field=what)
    return name


def check_mapping(value: object, what: str) -> Mapping[Any, Any]:
    """`log_params`, `set_tags` and friends take a dict of name -> value."""
    if not isinstance(value, Mapping):
        raise InvalidInput(
            f"{what} must be a dict of name -> value, got {type(value).__name__}", field=what
        )
    return value
