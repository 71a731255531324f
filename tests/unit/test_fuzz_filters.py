"""Fuzzing the search filter and order_by languages of every searchable entity: any text
parses or is refused with an InvalidInput that points into the text, and what parses
can be bound into SQL (tests/unit/test_filter_language.py has the grammar itself)."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from ledgerflow.events.errors import InvalidInput
from ledgerflow.services.projector.filter_fields import (
    EXPERIMENT_FIELDS,
    MODEL_VERSION_FIELDS,
    REGISTERED_MODEL_FIELDS,
    RUN_FIELDS,
    Fields,
)
from ledgerflow.services.projector.filters import (
    And,
    Comparison,
    Node,
    Not,
    Or,
    parse_filter,
    parse_order_by,
)
from ledgerflow.services.projector.logged_model_queries import LOGGED_MODEL_FIELDS
from tests.unit.fuzzing import (
    FUZZ,
    INT64_MAX,
    any_text,
    long_digits,
    mutated,
    sendable,
    tricky_text,
    utf8,
)

ALL_FIELDS = {
    "runs": RUN_FIELDS,
    "experiments": EXPERIMENT_FIELDS,
    "registered models": REGISTERED_MODEL_FIELDS,
    "model versions": MODEL_VERSION_FIELDS,
    "logged models": LOGGED_MODEL_FIELDS,
}
fields = st.sampled_from(sorted(ALL_FIELDS)).map(ALL_FIELDS.__getitem__)

VALID_FILTERS = [
    "metrics.acc > 0.9 AND params.lr = '0.01' and tags.team = 'cv'",
    "attributes.status IN ('RUNNING', 'FINISHED') OR run_name LIKE 'base%'",
    'NOT (metrics.`val loss` <= -1.5e-3) AND tags."a b" IS NOT NULL',
    "attributes.start_time >= 1700000000000 and metrics.m != NaN",
    "name ILIKE '%iris%' AND tags.stage != 'dev'",
    "creation_timestamp < 1 OR last_updated_timestamp > 2",
    "version_number = '2' AND current_stage = 'Production'",
    "version IN (1, 2, 3) AND run_id = 'abc'",
    "status = 'READY' AND params.depth NOT IN ('3', '4') AND metrics.acc > -Infinity",
]
VALID_ORDER_ITEMS = [
    "metrics.acc DESC", "params.lr", "tags.`a b` ASC", "start_time", "name desc",
    "attributes.creation_timestamp", "version_number ASC", "last_updated_timestamp",
]  # fmt: skip

filter_texts = st.one_of(
    any_text,
    tricky_text,
    mutated(st.sampled_from(VALID_FILTERS)),
    mutated(st.sampled_from(VALID_FILTERS), edits=8),
    st.lists(st.sampled_from(VALID_FILTERS), min_size=1, max_size=3).map(" AND ".join),
    st.builds("{} {}".format, st.sampled_from(VALID_FILTERS), any_text),
)


def _comparisons(node: Node) -> list[Comparison]:
    if isinstance(node, Comparison):
        return [node]
    if isinstance(node, Not):
        return _comparisons(node.item)
    assert isinstance(node, And | Or) and len(node.items) >= 2
    return [c for item in node.items for c in _comparisons(item)]


def _bindable(value: object) -> bool:
    """What SQLite and Postgres take as a parameter: no integer past 64 bits, no text
    that is not UTF-8."""
    if isinstance(value, tuple):
        return all(_bindable(v) for v in value)
    if isinstance(value, str):
        return utf8(value)
    return not isinstance(value, int) or -INT64_MAX - 1 <= value <= INT64_MAX


def _points_into(e: InvalidInput, text: str) -> None:
    sendable(e)
    assert e.position is not None and 0 <= e.position <= len(text), (e.position, e.message)
    shown = text.encode("utf-8", "replace").decode()  # as errors quote a lone surrogate
    assert e.token is not None and shown.startswith(e.token, e.position), (e.token, e.message)
    assert f"position {e.position}" in e.message


@FUZZ
@given(text=filter_texts, on=fields)
@example(text="metrics.acc > " + "9" * 5000, on=RUN_FIELDS)
@example(text="attributes.start_time > 99999999999999999999", on=RUN_FIELDS)
@example(text="metrics.acc IN (1, -9223372036854775809)", on=RUN_FIELDS)
@example(text="version = '" + "1" * 5000 + "'", on=MODEL_VERSION_FIELDS)
@example(text="version = '18446744073709551616'", on=MODEL_VERSION_FIELDS)
@example(text="(" * 5000 + "metrics.a > 1" + ")" * 5000, on=RUN_FIELDS)
@example(text="NOT " * 5000 + "metrics.a > 1", on=RUN_FIELDS)
@example(text=" OR ".join(["metrics.a > 1"] * 1000), on=RUN_FIELDS)
@example(text="params.p = '\ud800'", on=RUN_FIELDS)
@example(text="metrics.a > 1 AND \ud800", on=RUN_FIELDS)  # the token quoted back
@example(text="tags.`a\udc00` IS NULL", on=RUN_FIELDS)
def test_any_filter_parses_to_bindable_values_or_is_refused_pointing_into_the_text(
    text: str, on: Fields
) -> None:
    try:
        node = parse_filter(text, on)
    except InvalidInput as e:
        sendable(e)
        assert e.field == "filter" and e.message.startswith("Invalid filter")
        if "at position" in e.message:
            _points_into(e, text)
        return
    if node is not None:
        for comparison in _comparisons(node):
            assert _bindable(comparison.value) and utf8(comparison.key), comparison


@FUZZ
@given(text=long_digits, sign=st.sampled_from(["", "-", "+"]), key=st.sampled_from(["m", "`m`"]))
def test_a_metric_compared_with_any_long_number_parses_to_a_number_sql_can_bind(
    text: str, sign: str, key: str
) -> None:
    node = parse_filter(f"metrics.{key} > {sign}{text}")
    assert isinstance(node, Comparison) and isinstance(node.value, int | float)
    assert _bindable(node.value)
    assert node.value >= 0 if sign != "-" else node.value <= 0


@FUZZ
@given(value=any_text, key=any_text.filter(bool), quote=st.sampled_from(["'", '"']))
@example(value="a\ud800", key="k", quote="'")
def test_any_quoted_text_reads_back_as_itself_or_is_refused_as_not_unicode(
    value: str, key: str, quote: str
) -> None:
    def quoted(text: str, q: str) -> str:
        return q + text.replace("\\", "\\\\").replace(q, q + q) + q

    text = f"tags.{quoted(key, '`')} = {quoted(value, quote)}"
    try:
        node = parse_filter(text)
    except InvalidInput as e:
        assert not (utf8(key) and utf8(value)), e.message
        assert "not valid Unicode" in e.message and "surrogate" in e.message
        _points_into(e, text)
        return
    assert node == Comparison("tag", key, "=", value)
    assert utf8(key) and utf8(value), "text SQL cannot bind was let through"


@FUZZ
@example(items=["tags.`\ud800` DESC"], on=RUN_FIELDS)
@given(
    items=st.lists(
        st.one_of(any_text, tricky_text, mutated(st.sampled_from(VALID_ORDER_ITEMS))),
        max_size=4,
    ),
    on=fields,
)
def test_any_order_by_parses_or_is_refused_pointing_into_the_item(
    items: list[str], on: Fields
) -> None:
    try:
        keys = parse_order_by(items, on)
    except InvalidInput as e:
        sendable(e)
        assert e.field == "order_by" and e.message.startswith("Invalid order_by")
        if "at position" in e.message:
            bad = [i for i in items if repr(i) in e.message]
            assert bad, e.message
            _points_into(e, bad[0])
        return
    assert len(keys) == len(items) and all(utf8(k.key) for k in keys), keys
