"""Parsing the compact option syntax of `ledgerflow deployments …` into API values.

    --variant a=models:/iris/1:90       name=URI[:WEIGHT]
    --shadow  c=models:/iris/3          a copy of the traffic, never answered with
    --bundle  a=<bundle id>             serve variant a from a built bundle
    --canary  b:10,50,100               candidate:percent,percent,...
    --guardrail 'error_rate<=0.05'      METRIC<=LIMIT or METRIC>=LIMIT; LIMITx: times baseline
    a=50 b=50                           traffic weights

Each function raises `typer.BadParameter` naming the option, so a typo is reported as
`Invalid value for '--variant': …` with the exit status of a usage error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import typer

_GUARD_RE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*(<=|>=)\s*([^\s]+?)\s*(x?)\s*")
_PINNED_RE = re.compile(r"models:/([^/@]+)/([0-9]{1,18})")  # longer: the registry refuses it


def _bad(option: str, message: str) -> typer.BadParameter:
    return typer.BadParameter(message, param_hint=f"'{option}'")


def _number(text: str, option: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad(option, f"{what} {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise _bad(option, f"{what} {text!r} must be a finite number >= 0")
    return value


def split_assignment(text: str, option: str, example: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise _bad(option, f"{text!r} must look like {example}")
    return name.strip(), value.strip()


def parse_variant(text: str, option: str = "--variant") -> tuple[str, str, float | None]:
    """`a=models:/m/1:90` -> ("a", "models:/m/1", 90.0); the weight is optional."""
    name, rest = split_assignment(text, option, "NAME=models:/MODEL/VERSION[:WEIGHT]")
    uri, weight = rest, None
    if rest.count(":") > 1:  # models:/ URIs hold no other colon: the last part is a weight
        uri, _, tail = rest.rpartition(":")
        weight = _number(tail, option, f"weight of {name!r}")
    if not uri.startswith("models:/"):
        raise _bad(option, f"{text!r}: the variant's model must be a models:/ URI")
    return name, uri, weight


def pinned_version(uri: str) -> tuple[str, int] | None:
    """`models:/m/3` -> ("m", 3); None for URIs the registry must resolve (@alias, latest)."""
    found = _PINNED_RE.fullmatch(uri)
    return (found.group(1), int(found.group(2))) if found else None


def parse_weights(items: Sequence[str], option: str = "WEIGHTS") -> dict[str, float]:
    """`["a=50", "b=50"]` -> {"a": 50.0, "b": 50.0}."""
    if not items:
        raise _bad(option, "give the split as NAME=WEIGHT pairs, e.g. a=90 b=10")
    weights: dict[str, float] = {}
    for item in items:
        name, value = split_assignment(item, option, "NAME=WEIGHT")
        if name in weights:
            raise _bad(option, f"variant {name!r} is given twice")
        weights[name] = _number(value, option, f"weight of {name!r}")
    return weights


def parse_canary(
    text: str, min_requests: int = 0, min_seconds: float = 0.0, option: str = "--canary"
) -> dict[str, Any]:
    """`b:10,50,100` -> a plan moving b to 10 %, then 50 %, then 100 % of the traffic."""
    candidate, sep, steps = text.partition(":")
    if not sep or not candidate.strip() or not steps.strip():
        raise _bad(
            option, f"{text!r} must look like CANDIDATE:PERCENT,PERCENT,... e.g. b:10,50,100"
        )
    weights = [_number(s.strip(), option, "step weight") for s in steps.split(",")]
    if any(w > 100 for w in weights):
        raise _bad(option, f"{text!r}: step weights are percentages, at most 100")
    return {
        "candidate": candidate.strip(),
        "steps": [
            {"weight": w, "min_requests": min_requests, "min_duration_s": min_seconds}
            for w in weights
        ],
    }


def parse_guardrail(text: str, option: str = "--guardrail") -> dict[str, Any]:
    """`error_rate<=0.05` (absolute) or `latency_p99_ms<=1.5x` (1.5 times the baseline's);
    `>=` bounds from below (`conversion>=0.9x`)."""
    found = _GUARD_RE.fullmatch(text)
    if found is None:
        raise _bad(
            option,
            f"{text!r} must look like METRIC<=LIMIT or METRIC>=LIMIT, with an x after the "
            "limit to make it relative to the baseline (latency_p99_ms<=1.5x)",
        )
    metric, op, limit, relative = found.groups()
    try:
        threshold = float(limit)
    except ValueError:
        raise _bad(option, f"{text!r}: limit {limit!r} is not a number") from None
    return {
        "metric": metric,
        "bound": "max" if op == "<=" else "min",
        "threshold": threshold,
        "relative": relative == "x",
    }
