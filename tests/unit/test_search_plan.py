"""The driving condition of a search's AND (services/projector/search_plan.py): chosen by
the estimated rows of each group, not by the order the filter's terms were written in."""

from __future__ import annotations

from ledgerflow.services.projector.filters import And, parse_filter
from ledgerflow.services.projector.search_plan import (
    ESTIMATE_CAP,
    Group,
    choices,
    choose,
    groups,
    listed,
    plan_and,
)


def _and(text: str) -> And:
    node = parse_filter(text)
    assert isinstance(node, And)
    return node


def _keys(found: list[Group]) -> list[str]:
    return [f"{g.entity}.{g.key}" for g in found]


def test_both_ends_of_a_range_on_one_key_are_one_group() -> None:
    found = groups(_and("metrics.m >= 0.25 and params.p = 'a' and metrics.m < 0.75"))
    assert _keys(found) == ["metric.m", "param.p"]
    assert [c.op for c in found[0].items] == [">=", "<"]


def test_only_comparisons_an_index_range_answers_can_drive() -> None:
    node = _and(
        "params.p != 'a' and tags.t IS NULL and attributes.status = 'RUNNING' "
        "and params.q NOT LIKE 'x%' and metrics.m > 0.5"
    )
    assert _keys(groups(node)) == ["metric.m"]


def test_the_group_with_the_fewest_estimated_rows_drives_whatever_its_place() -> None:
    for text in ("params.p = 'a' and metrics.m > 0.99", "metrics.m > 0.99 and params.p = 'a'"):
        found = groups(_and(text))
        by_key = {g.key: g for g in found}
        few_metrics = {by_key["p"]: 1000, by_key["m"]: 100}
        few_params = {by_key["p"]: 100, by_key["m"]: 1000}
        assert choose(found, few_metrics) == by_key["m"]
        assert choose(found, few_params) == by_key["p"]


def test_a_tie_goes_to_an_equality_and_then_to_the_earlier_group() -> None:
    found = groups(_and("metrics.m > 0.5 and params.p = 'a' and params.q = 'b'"))
    assert choose(found, dict.fromkeys(found, ESTIMATE_CAP)).key == "p"  # type: ignore[union-attr]


def test_without_estimates_the_first_equality_drives_and_a_lone_group_always() -> None:
    found = groups(_and("metrics.m > 0.5 and params.p = 'a'"))
    assert choose(found, None).key == "p"  # type: ignore[union-attr]
    assert choose(groups(_and("metrics.m > 0.5 and metrics.m < 0.7")), None) is not None
    assert choose(groups(_and("metrics.m > 0.5 and metrics.n < 0.7")), None) is None
    assert choose([], {}) is None


def test_estimates_are_asked_only_for_ands_with_a_choice_to_make_however_deep() -> None:
    node = parse_filter(
        "metrics.m < 0.1 or (params.p = 'a' and metrics.n < 0.2) "
        "or not (tags.t = 'x' and tags.u = 'y') or (metrics.k > 1 and metrics.k < 2)"
    )
    assert sorted(_keys(choices(node))) == ["metric.n", "param.p", "tag.t", "tag.u"]
    assert choices(None) == []


def test_groups_matching_few_more_rows_than_the_driver_are_lists_the_rest_probes() -> None:
    found = groups(_and("params.p = 'a' and params.q = 'b' and metrics.m > 0.5 and tags.t = 'x'"))
    p, q, m, t = found
    counts = {p: 100, q: 250, m: ESTIMATE_CAP, t: 301}  # m at the cap: its count is unknown
    driver = choose(found, counts)
    assert driver == p
    assert listed(found, p, counts) == [q]
    assert listed(found, p, None) == []


def test_an_and_is_planned_as_its_driver_the_groups_listed_beside_it_then_the_rest() -> None:
    node = _and(
        "params.p = 'a' and metrics.m > 0.5 and tags.t = 'x' "
        "and attributes.status = 'RUNNING' and metrics.m < 0.9"
    )
    found = {g.key: g for g in groups(node)}
    lists, rest = plan_and(node, {found["p"]: 10, found["m"]: 20, found["t"]: 1000})
    assert _keys(lists) == ["param.p", "metric.m"]
    assert rest == [node.items[2], node.items[3]]


def test_an_and_no_group_can_drive_keeps_every_item() -> None:
    node = _and("params.p != 'a' and metrics.m IS NULL and metrics.n > 1 and tags.t > 'x'")
    assert plan_and(node, None) == ([], list(node.items))
