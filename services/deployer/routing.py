"""Sticky, weighted assignment of requests to variants.

Weighted rendezvous hashing (highest random weight): every (variant, key) pair gets a
stable uniform number `u` in (0, 1) from a keyed hash, and the key goes to the variant
with the highest score `-weight / ln(u)`. The score of each variant is an exponential
race, so a variant wins with probability weight / sum(weights). Two properties follow
and are why this scheme rather than buckets on a ring:

- sticky: the same key gets the same variant while the weights are unchanged, on every
  replica, with no shared state beyond the deployment's events;
- minimal movement: raising one variant's weight only raises its own scores, so keys only
  move *to* it; lowering it only moves keys *away* from it. A key whose variant keeps its
  weight and wins against the others stays put.

The salt is the deployment name, so different deployments split the same users
independently of each other.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from ledgerflow.events.errors import InvalidInput

FORCE_HEADER = "X-Ledgerflow-Variant"
"""Debug header forcing a variant, bypassing the split (never for production traffic)."""

_TWO_64 = float(2**64)


def unit_hash(salt: str, variant: str, key: str) -> float:
    """A stable uniform number in the open interval (0, 1) for (salt, variant, key)."""
    data = "\x1f".join((salt, variant, key)).encode()
    digest = hashlib.blake2b(data, digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / _TWO_64


def assign(key: str, weights: Mapping[str, float], *, salt: str) -> str:
    """The variant `key` is routed to under `weights` (any non-negative scale).

    Variants with weight 0 are never chosen. Ties (practically impossible) go to the
    variant whose name sorts first, so every replica agrees.
    """
    best: str | None = None
    best_score = -math.inf
    for variant in sorted(weights):
        weight = weights[variant]
        if not weight >= 0 or math.isinf(weight):
            raise InvalidInput(
                f"weight of variant {variant!r} must be a finite number >= 0, got {weight!r}",
                field="weights",
            )
        if weight == 0:
            continue
        score = -weight / math.log(unit_hash(salt, variant, key))
        if score > best_score:
            best, best_score = variant, score
    if best is None:
        raise InvalidInput(
            "every variant has weight 0: give at least one non-shadow variant traffic",
            field="weights",
        )
    return best


@dataclass(frozen=True)
class Route:
    """Where one request goes: the variant that answers, and the shadows that get a copy."""

    variant: str
    shadows: tuple[str, ...] = ()
    forced: bool = False
    """The variant came from the debug header, not from the split."""
    sticky: bool = False
    """The variant came from the request's key (the same key routes the same way)."""


def route(
    *,
    deployment: str,
    weights: Mapping[str, float],
    shadows: Sequence[str],
    key: str | None,
    request_id: str,
    forced: str | None = None,
    known: Collection[str],
) -> Route:
    """Route one request of `deployment`.

    A forced variant (the `X-Ledgerflow-Variant` header) wins and must be one of `known`.
    Without a key the request id is hashed instead, which splits requests at random in
    the right proportions but is not sticky. Every shadow variant other than the chosen
    one gets a copy of the request.
    """
    if forced is not None:
        if forced not in known:
            names = ", ".join(sorted(known)) or "none"
            raise InvalidInput(
                f"header {FORCE_HEADER} names unknown variant {forced!r} "
                f"of deployment {deployment!r} (variants: {names})",
                field=FORCE_HEADER,
            )
        variant, sticky = forced, False
    elif key is not None and key != "":
        variant, sticky = assign(key, weights, salt=deployment), True
    else:
        variant, sticky = assign(request_id, weights, salt=deployment), False
    copies = tuple(s for s in shadows if s != variant)
    return Route(variant=variant, shadows=copies, forced=forced is not None, sticky=sticky)
