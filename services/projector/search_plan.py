"""Which condition of an AND drives a search, chosen from statistics.

A search over key/value fields fetches the owners matching one condition first (an
``owner IN (subquery)`` list read from the (key, value, owner) index) and checks every
other condition per candidate by a primary-key probe. Its cost follows how many rows the
driving condition matches, so the driver is the group with the fewest matching rows, as
counted on the index (:func:`~.search.estimate`), whatever the order the filter's terms
were written in. Comparisons of one key in one AND (both ends of a range) form one group:
one index range, not two lists to intersect. Pure functions of the parsed filter and the
counts, so the choice is tested without a database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ledgerflow.services.projector.filters import And, Comparison, Node, Not, Or

DRIVING_OPS = frozenset({"=", "IN", "<", "<=", ">", ">=", "LIKE"})
"""Operators an index range answers (LIKE with case-sensitive LIKE and a fixed prefix)."""
EQUALITY_OPS = frozenset({"=", "IN"})
LIST_FACTOR = 3
"""Another group of the AND becomes a list of its own (read from its index, then a
membership test per candidate) rather than a probe of the table per candidate while it
matches at most this many times the driver's rows: a probe costs a few list entries."""
ESTIMATE_CAP = 20_000
"""Rows counted at most per group (an index-only range, well under a millisecond per
thousand rows): enough to tell a list from a probe on stores of 100,000 runs, where
probing 10,000 candidates per condition costs ten times the lists."""


@dataclass(frozen=True, slots=True)
class Group:
    """The comparisons of one AND on one ``entity.key``, tested together."""

    entity: str
    key: str
    items: tuple[Comparison, ...]

    @property
    def equality(self) -> bool:
        return any(c.op in EQUALITY_OPS for c in self.items)


def groups(node: And) -> list[Group]:
    """The groups of ``node``'s key/value comparisons that could drive it, in the order
    their keys first appear."""
    found: dict[tuple[str, str], list[Comparison]] = {}
    for item in node.items:
        if isinstance(item, Comparison) and item.entity != "attribute" and item.op in DRIVING_OPS:
            found.setdefault((item.entity, item.key), []).append(item)
    return [Group(entity, key, tuple(items)) for (entity, key), items in found.items()]


def choose(candidates: Sequence[Group], estimates: Mapping[Group, int] | None) -> Group | None:
    """The group that drives: the only one; else the fewest estimated rows (an equality,
    then the earlier, on a tie); without estimates, the first equality; else None."""
    if len(candidates) < 2:
        return candidates[0] if candidates else None
    if not estimates or any(g not in estimates for g in candidates):
        return next((g for g in candidates if g.equality), None)
    ranked = sorted(
        range(len(candidates)),
        key=lambda i: (estimates[candidates[i]], not candidates[i].equality, i),
    )
    return candidates[ranked[0]]


def listed(
    candidates: Sequence[Group], driver: Group, estimates: Mapping[Group, int] | None
) -> list[Group]:
    """The groups other than ``driver`` cheaper to test as lists of their own than as a
    probe per candidate: known to match at most :data:`LIST_FACTOR` times the driver's
    rows (and fewer than the cap)."""
    if not estimates or driver not in estimates:
        return []
    most = LIST_FACTOR * estimates[driver]
    return [
        g
        for g in candidates
        if g != driver and g in estimates and estimates[g] < ESTIMATE_CAP and estimates[g] <= most
    ]


def plan_and(node: And, estimates: Mapping[Group, int] | None) -> tuple[list[Group], list[Node]]:
    """How ``node`` is searched: the groups read as lists of owners (the driver first,
    then those :func:`listed`), and its items left to test per candidate, in the order
    written (the listed groups' comparisons are not among them). No lists when no group
    can drive: then every item is its own condition."""
    found = groups(node)
    driver = choose(found, estimates)
    if driver is None:
        return [], list(node.items)
    lists = [driver, *listed(found, driver, estimates)]
    covered = {c for g in lists for c in g.items}
    return lists, [n for n in node.items if not (isinstance(n, Comparison) and n in covered)]


def choices(node: Node | None) -> list[Group]:
    """Every group of every AND in ``node`` with two or more groups to choose from: what
    :func:`~.search.estimate` counts, once per search."""
    out: list[Group] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, And):
            found = groups(n)
            if len(found) > 1:
                out += [g for g in found if g not in out]
            stack += n.items
        elif isinstance(n, Or):
            stack += n.items
        elif isinstance(n, Not):
            stack.append(n.item)
    return out
