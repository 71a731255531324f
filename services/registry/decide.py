"""Pure checks for registry commands: names, aliases, versions and stages."""

from __future__ import annotations

import re

from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.model_payloads import STAGES

MAX_NAME = 256
MAX_VERSION = 2**63 - 1  # what SQL binds as an integer
_ALIAS_RE = re.compile(r"^[\w\-]{1,255}$")
_DIGITS = re.compile(r"[0-9]+")  # ASCII: str.isdigit() also says yes to "²", which int() refuses


def check_model_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(
            f"registered model name must be a non-empty string, got {name!r}", field="name"
        )
    if len(name) > MAX_NAME:
        raise InvalidInput(
            f"registered model name is {len(name)} characters; the limit is {MAX_NAME}",
            field="name",
        )
    if any(c in name for c in "/@:") or name != name.strip():
        raise InvalidInput(
            f"registered model name {name!r} must not contain '/', '@' or ':' or surrounding "
            "spaces: they would make models:/ URIs ambiguous",
            field="name",
        )
    return name


def check_alias(alias: object) -> str:
    if not isinstance(alias, str) or not _ALIAS_RE.match(alias):
        raise InvalidInput(
            f"alias {alias!r} must be 1-255 letters, digits, '_' or '-'", field="alias"
        )
    if alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias):
        raise InvalidInput(
            f"alias {alias!r} is reserved: 'latest' and 'v<number>' already mean versions in "
            "models:/ URIs",
            field="alias",
        )
    return alias


def check_version(version: object) -> int:
    if isinstance(version, bool):
        raise InvalidInput(f"version must be a number, got {version!r}", field="version")
    if isinstance(version, int):
        v = version
    elif isinstance(version, str) and _DIGITS.fullmatch(version.strip()):
        digits = version.strip().lstrip("0") or "0"
        v = int(digits) if len(digits) <= 19 else MAX_VERSION + 1  # int() refuses 4300 digits
    else:
        raise InvalidInput(
            f"version must be a whole number like 3, got {version!r:.60}", field="version"
        )
    if v < 1:
        raise InvalidInput(f"versions start at 1, got {v}", field="version")
    if v > MAX_VERSION:
        raise InvalidInput(f"version {version!r:.40} is too large for a version", field="version")
    return v


def check_stage(stage: object) -> str:
    for known in STAGES:
        if isinstance(stage, str) and stage.lower() == known.lower():
            return known
    raise InvalidInput(f"stage must be one of {', '.join(STAGES)}, got {stage!r}", field="stage")
