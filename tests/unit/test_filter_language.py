"""Tests for the search filter and order_by parser (services/projector/filters.py): runs,
and the same grammar on the fields of experiments and the registry."""

from __future__ import annotations

import importlib
import math
import re
import sys
import types
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st


def _import_filters() -> types.ModuleType:
    """Import the module normally; fall back to mapping the source tree by hand."""
    try:
        return importlib.import_module("ledgerflow.services.projector.filters")
    except ModuleNotFoundError:
        root = Path(__file__).resolve().parents[2]
        for name, sub in [
            ("ledgerflow", "sdk"),
            ("ledgerflow.events", "events"),
            ("ledgerflow.services", "services"),
            ("ledgerflow.services.projector", "services/projector"),
        ]:
            try:
                importlib.import_module(name)
            except ModuleNotFoundError:
                module = types.ModuleType(name)
                module.__path__ = [str(root / sub)]
                sys.modules[name] = module
        return importlib.import_module("ledgerflow.services.projector.filters")


F = _import_filters()
InvalidInput = importlib.import_module("ledgerflow.events.errors").InvalidInput
parse_filter, parse_order_by = F.parse_filter, F.parse_order_by
C, And, Or, Not, OrderKey = F.Comparison, F.And, F.Or, F.Not, F.OrderKey


def fails(text: object, *fragments: str) -> str:
    """Assert that parsing ``text`` raises InvalidInput mentioning every fragment."""
    with pytest.raises(InvalidInput) as info:
        parse_filter(text)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert info.value.field == "filter"
    return message


def order_fails(items: object, *fragments: str) -> str:
    with pytest.raises(InvalidInput) as info:
        parse_order_by(items)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert info.value.field == "order_by"
    return message


A = C("metric", "a", ">", 1)
B = C("metric", "b", "<", 2)
D = C("param", "d", "=", "x")


# -- valid filters -----------------------------------------------------------


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t  "])
def test_empty_or_whitespace_filter_means_no_filter(text: str | None) -> None:
    assert parse_filter(text) is None


def test_a_single_metric_comparison_parses_to_a_comparison() -> None:
    assert parse_filter("metrics.acc > 0.9") == C("metric", "acc", ">", 0.9)


@pytest.mark.parametrize(
    ("op", "expected"),
    [("=", "="), ("!=", "!="), ("<>", "!="), ("<", "<"), ("<=", "<="), (">", ">"), (">=", ">=")],
)
def test_every_operator_is_recognised_and_angle_brackets_mean_not_equal(
    op: str, expected: str
) -> None:
    assert parse_filter(f"metrics.loss {op} 3") == C("metric", "loss", expected, 3)


@pytest.mark.parametrize(
    ("prefix", "entity", "value"),
    [
        ("metrics", "metric", "1"),
        ("metric", "metric", "1"),
        ("params", "param", "'1'"),
        ("param", "param", "'1'"),
        ("parameter", "param", "'1'"),
        ("parameters", "param", "'1'"),
        ("tags", "tag", "'1'"),
        ("tag", "tag", "'1'"),
        ("METRICS", "metric", "1"),
        ("Tags", "tag", "'1'"),
    ],
)
def test_entity_aliases_normalize_to_singular_names(prefix: str, entity: str, value: str) -> None:
    node = parse_filter(f"{prefix}.k = {value}")
    assert node == C(entity, "k", "=", 1 if entity == "metric" else "1")


@pytest.mark.parametrize(
    "prefix", ["attributes.", "attribute.", "attr.", "run.", "", "ATTRIBUTES."]
)
def test_attribute_prefixes_and_bare_attribute_names_mean_attributes(prefix: str) -> None:
    assert parse_filter(f"{prefix}run_name = 'x'") == C("attribute", "run_name", "=", "x")


@pytest.mark.parametrize(
    ("written", "key"),
    [("runName", "run_name"), ("run_uuid", "run_id"), ("user", "user_id"), ("RUN_ID", "run_id")],
)
def test_attribute_aliases_are_normalized(written: str, key: str) -> None:
    assert parse_filter(f"{written} = 'x'") == C("attribute", key, "=", "x")
    assert parse_filter(f"attributes.{written} = 'x'") == C("attribute", key, "=", "x")


def test_attribute_table_lists_each_attribute_type() -> None:
    assert F.ATTRIBUTES["start_time"] == F.ATTRIBUTES["end_time"] == "number"
    assert {k for k, v in F.ATTRIBUTES.items() if v == "string"} == {
        "run_id", "run_name", "status", "experiment_id", "user_id", "lifecycle_stage",
        "artifact_uri",
    }  # fmt: skip


def test_keywords_are_case_insensitive() -> None:
    text = "metrics.a > 1 and not params.d in ('x') Or tags.t iLiKe 'a%' OR tags.t is not null"
    assert parse_filter(text) == Or(
        (
            And((A, Not(C("param", "d", "IN", ("x",))))),
            C("tag", "t", "ILIKE", "a%"),
            C("tag", "t", "IS NOT NULL", None),
        )
    )


def test_and_binds_tighter_than_or() -> None:
    assert parse_filter("metrics.a > 1 OR metrics.b < 2 AND params.d = 'x'") == Or((A, And((B, D))))
    assert parse_filter("metrics.a > 1 AND metrics.b < 2 OR params.d = 'x'") == Or((And((A, B)), D))


def test_or_and_parentheses_nest_as_written() -> None:
    assert parse_filter("(metrics.a > 1 OR metrics.b < 2) AND params.d = 'x'") == And(
        (Or((A, B)), D)
    )
    assert parse_filter("((metrics.a > 1 AND metrics.b < 2)) AND params.d = 'x'") == And(
        (And((A, B)), D)
    )
    assert parse_filter("(metrics.a > 1)") == A


def test_chains_of_the_same_connective_are_flat_and_keep_their_order() -> None:
    assert parse_filter("metrics.a > 1 AND metrics.b < 2 AND params.d = 'x'") == And((A, B, D))
    assert parse_filter("params.d = 'x' OR metrics.b < 2 OR metrics.a > 1") == Or((D, B, A))


def test_not_applies_to_the_nearest_operand() -> None:
    assert parse_filter("NOT metrics.a > 1 AND metrics.b < 2") == And((Not(A), B))
    assert parse_filter("NOT (metrics.a > 1 AND metrics.b < 2)") == Not(And((A, B)))
    assert parse_filter("NOT NOT metrics.a > 1") == Not(Not(A))


def test_in_lists_hold_numbers_for_metrics_and_strings_for_params() -> None:
    assert parse_filter("metrics.a IN (1, 2.5, -3)") == C("metric", "a", "IN", (1, 2.5, -3))
    assert parse_filter("params.opt NOT IN ('adam', \"sgd\")") == C(
        "param", "opt", "NOT IN", ("adam", "sgd")
    )
    assert parse_filter("tags.t IN ('only')") == C("tag", "t", "IN", ("only",))


@pytest.mark.parametrize("op", ["LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE"])
def test_like_and_ilike_take_a_pattern_and_may_be_negated(op: str) -> None:
    assert parse_filter(f"tags.mlflow.runName {op} '%run\\_1%'") == C(
        "tag", "mlflow.runName", op, "%run\\_1%"
    )
    assert parse_filter(f"run_name {op} 'a%'") == C("attribute", "run_name", op, "a%")


@pytest.mark.parametrize("field", ["metrics.a", "params.a", "tags.a", "end_time", "status"])
def test_is_null_and_is_not_null_work_on_every_kind_of_field(field: str) -> None:
    node = parse_filter(f"{field} IS NULL")
    assert isinstance(node, C) and node.op == "IS NULL" and node.value is None
    node = parse_filter(f"{field} is not null")
    assert isinstance(node, C) and node.op == "IS NOT NULL" and node.value is None


def test_dotted_tag_keys_keep_their_dots_after_the_entity() -> None:
    assert parse_filter("tags.mlflow.runName = 'x'") == C("tag", "mlflow.runName", "=", "x")
    assert parse_filter("params.a-b/c:d.e = 'x'") == C("param", "a-b/c:d.e", "=", "x")
    assert parse_filter("metrics.val.loss<=0.1") == C("metric", "val.loss", "<=", 0.1)


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ("`my key`", "my key"),
        ('"my key"', "my key"),
        ("`a``b`", "a`b"),
        ('"a""b"', 'a"b'),
        ("`a\\`b`", "a`b"),
        ("`AND`", "AND"),
        ("`x = 1`", "x = 1"),
    ],
)
def test_backticked_and_double_quoted_keys_may_hold_any_character(written: str, key: str) -> None:
    assert parse_filter(f"tags.{written} = 'v'") == C("tag", key, "=", "v")
    assert parse_order_by([f"tags.{written} DESC"]) == (OrderKey("tag", key, True),)


def test_a_backticked_name_without_prefix_is_an_attribute() -> None:
    assert parse_filter("`status` = 'killed'") == C("attribute", "status", "=", "KILLED")
    assert parse_filter("attributes.`start_time` > 5") == C("attribute", "start_time", ">", 5)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'it''s'", "it's"),
        ("'it\\'s'", "it's"),
        ('"say ""hi"""', 'say "hi"'),
        ('"say \\"hi\\""', 'say "hi"'),
        ("'back\\\\slash'", "back\\slash"),
        ("'C:\\path'", "C:\\path"),
        ("''", ""),
        ("'\"'", '"'),
        ('"\'"', "'"),
        ("'  spaces  '", "  spaces  "),
        ("'ünïcødé ✓'", "ünïcødé ✓"),
        ("'AND OR ('", "AND OR ("),
    ],
)
def test_string_literals_support_doubling_and_backslash_escapes(literal: str, value: str) -> None:
    assert parse_filter(f"params.p = {literal}") == C("param", "p", "=", value)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("42", 42),
        ("-7", -7),
        ("+7", 7),
        ("0.5", 0.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("-2.5E-3", -0.0025),
        ("9223372036854775807", 2**63 - 1),
        ("-9223372036854775808", -(2**63)),
    ],
)
def test_numbers_keep_int_or_float_as_written(literal: str, value: float) -> None:
    node = parse_filter(f"attributes.start_time = {literal}")
    assert node == C("attribute", "start_time", "=", value)
    assert type(node.value) is type(value)


def test_metric_values_are_floats_as_the_metrics_they_compare_with() -> None:
    node = parse_filter("metrics.m IN (1, 0.5, NaN)")
    assert isinstance(node, C) and isinstance(node.value, tuple)
    assert [type(v) for v in node.value] == [float, float, float]
    assert parse_filter("metrics.m = 42") == C("metric", "m", "=", 42.0)


@pytest.mark.parametrize(
    "literal", ["12345678901234567890", "9223372036854775808", "-9223372036854775809"]
)
def test_an_integer_past_64_bits_is_compared_as_a_float_which_sql_can_bind(literal: str) -> None:
    assert parse_filter(f"metrics.m = {literal}") == C("metric", "m", "=", float(literal))
    assert parse_filter(f"start_time < {literal}") == C(
        "attribute", "start_time", "<", float(literal)
    )


def test_a_number_too_large_even_for_a_float_is_refused_for_attributes_by_name() -> None:
    fails(f"start_time > {'9' * 400}", "position 13", "too large a number for start_time")
    fails(f"start_time > {'9' * 5000}", "too large a number for start_time")
    assert parse_filter(f"metrics.m < {'9' * 5000}") == C("metric", "m", "<", math.inf)


def test_nan_and_infinity_are_allowed_for_metrics() -> None:
    assert parse_filter("metrics.m = Infinity") == C("metric", "m", "=", math.inf)
    assert parse_filter("metrics.m > -infinity") == C("metric", "m", ">", -math.inf)
    assert parse_filter("metrics.m != +Infinity") == C("metric", "m", "!=", math.inf)
    node = parse_filter("metrics.m = NaN")
    assert isinstance(node, C) and math.isnan(node.value)
    node = parse_filter("metrics.m IN (nan, 1)")
    assert isinstance(node, C) and math.isnan(node.value[0]) and node.value[1] == 1


def test_time_attributes_compare_to_numbers() -> None:
    assert parse_filter("start_time >= 1700000000000 AND attributes.end_time < 2e12") == And(
        (C("attribute", "start_time", ">=", 1700000000000), C("attribute", "end_time", "<", 2e12))
    )


def test_status_values_are_normalized_to_upper_case() -> None:
    assert parse_filter("status = 'running'") == C("attribute", "status", "=", "RUNNING")
    assert parse_filter("attributes.status IN ('Finished', 'failed')") == C(
        "attribute", "status", "IN", ("FINISHED", "FAILED")
    )
    assert parse_filter("status != 'KILLED'") == C("attribute", "status", "!=", "KILLED")
    # Patterns are not status names; they pass through untouched.
    assert parse_filter("status LIKE 'run%'") == C("attribute", "status", "LIKE", "run%")


def test_whitespace_is_optional_around_operators_and_parentheses() -> None:
    assert parse_filter("(metrics.a>1)AND(metrics.b<2)") == And((A, B))
    assert parse_filter("params.d='x'OR metrics.a>1") == Or((D, A))
    assert parse_filter("metrics.a IN(1,2)") == C("metric", "a", "IN", (1, 2))
    assert parse_filter("  \n metrics.a\t>\n1  ") == A


def test_keys_are_case_sensitive_but_keyword_lookalike_keys_are_fine() -> None:
    assert parse_filter("tags.AND = 'x'") == C("tag", "AND", "=", "x")
    assert parse_filter("params.LR = 'x'") == C("param", "LR", "=", "x")


def test_nodes_are_frozen_and_hashable() -> None:
    node = parse_filter("metrics.a IN (1, 2) AND NOT tags.t = 'x'")
    assert hash(node) == hash(parse_filter("metrics.a IN (1, 2) AND NOT tags.t = 'x'"))
    with pytest.raises(FrozenInstanceError):
        node.items = ()  # type: ignore[misc]
    assert not hasattr(node, "__dict__")


# -- errors ------------------------------------------------------------------


def test_missing_value_names_the_position_and_what_was_expected() -> None:
    message = fails("metrics.acc > ")
    assert message == (
        "Invalid filter at position 14: expected a value after '>' but found end of input"
    )
    fails("metrics.acc > AND metrics.b = 1", "position 14", "expected a value after '>'", "'AND'")


def test_a_number_against_a_param_suggests_quoting_it() -> None:
    message = fails("params.lr = 0.01")
    assert message == (
        "Invalid filter at position 12: params.lr is compared as a string; write params.lr = '0.01'"
    )
    fails("tags.n != 3", "position 10", "tags.n is compared as a string", "write tags.n != '3'")
    fails("params.n IN ('a', 3)", "position 18", "quote it: '3'")
    fails("experiment_id = 1", "position 16", "experiment_id is compared as a string")
    fails("tags.t = NaN", "position 9", "write tags.t = 'NaN'")


def test_a_string_against_a_metric_is_rejected() -> None:
    fails("metrics.acc = 'high'", "position 14", "metrics.acc is compared as a number", "'high'")
    fails("metrics.acc > '0.5'", "position 14", "write metrics.acc > 0.5 without quotes")
    fails("start_time > 'yesterday'", "position 13", "start_time is compared as a number")
    fails("metrics.a IN (1, 'x')", "position 17", "compared as a number")


@pytest.mark.parametrize("op", ["LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE"])
def test_like_on_numeric_fields_is_rejected(op: str) -> None:
    pos = len("metrics.acc ") + (4 if op.startswith("NOT") else 0)
    word = op.removeprefix("NOT ")
    fails(f"metrics.acc {op} '9%'", f"position {pos}", f"{word} cannot be used with metrics.acc")
    fails(f"attributes.end_time {op} '1%'", "cannot be used with attributes.end_time")


def test_like_needs_a_quoted_pattern() -> None:
    fails("tags.t LIKE 5", "position 12", "expected a quoted pattern after LIKE", "'5'")
    fails("tags.t ILIKE", "position 12", "found end of input")


def test_status_must_be_a_known_status() -> None:
    fails("status = 'DONE'", "position 9", "'DONE'", "RUNNING, SCHEDULED, FINISHED, FAILED, KILLED")
    fails("status IN ('RUNNING', 'paused')", "position 22", "'paused'")


def test_unknown_attribute_lists_the_valid_ones() -> None:
    message = fails("attributes.color = 'red'", "position 0", "unknown attribute 'color'")
    for name in F.ATTRIBUTES:
        assert name in message
    fails("attr.x = 1", "unknown attribute 'x'")


def test_unknown_bare_field_or_entity_is_rejected() -> None:
    fails("acc > 1", "position 0", "unknown field 'acc'", "metrics.acc", "start_time")
    fails("metrics > 1", "unknown field 'metrics'", "write metrics.<key>")
    fails("  foo.bar = 1", "position 2", "unknown entity 'foo'", "metrics, params, tags")
    fails("tags. = 'x'", "position 5", "expected a key name after 'tags.'")
    fails("tags.`` = 'x'", "position 5", "expected a key name after 'tags.'")


def test_nan_and_infinity_are_rejected_outside_metrics() -> None:
    fails("start_time > NaN", "position 13", "'NaN' is only allowed for metrics")
    fails("end_time < -Infinity", "position 11", "'-Infinity' is only allowed for metrics")


def test_unterminated_strings_and_quoted_names_report_where_they_start() -> None:
    fails("tags.t = 'abc", "position 9", "unterminated string", "closing '")
    fails('tags.t = "abc', "position 9", "unterminated string", 'closing "')
    fails("tags.t = 'it\\'", "position 9", "unterminated string")
    fails("tags.`abc = 'x'", "position 5", "unterminated quoted name", "closing `")


def test_unbalanced_parentheses_are_reported() -> None:
    fails(
        "((metrics.a > 1) AND metrics.b < 2",
        "position 34",
        "expected ')' to close the '(' at position 0",
        "end of input",
    )
    fails("metrics.a > 1)", "position 13", "unmatched ')'")
    fails("()", "position 1", "expected a field", "')'")
    fails("(metrics.a > 1 metrics.b < 2)", "position 15", "expected ')'", "'metrics.b'")


def test_trailing_garbage_is_rejected() -> None:
    fails("metrics.a > 1 metrics.b < 2", "position 14", "expected AND, OR or end of input")
    fails("metrics.a > 1 AND", "position 17", "expected a field", "end of input")
    fails("metrics.a > 1 ,", "position 14", "','")


def test_malformed_numbers_and_stray_characters_are_rejected() -> None:
    fails("metrics.a = 1.5.2", "position 12", "malformed number '1.5.2'")
    fails("metrics.a = 1abc AND metrics.b = 1", "position 12", "malformed number '1abc'")
    fails("metrics.a = 1 AND metrics.b @ 2", "position 28", "unexpected character '@'")
    fails("metrics.a ! 2", "position 10", "unexpected character '!'")
    fails("metrics.a = \u0663", "position 12", "unexpected character")


def test_incomplete_comparisons_say_what_was_expected() -> None:
    fails("metrics.a", "position 9", "expected an operator", "after 'metrics.a'", "end of input")
    fails("metrics.a 1", "position 10", "expected an operator", "'1'")
    fails("metrics.a NOT = 1", "position 14", "expected IN, LIKE or ILIKE after NOT", "'='")
    fails("metrics.a IS 1", "position 13", "expected NULL after IS", "'1'")
    fails("metrics.a IS NOT 1", "position 17", "expected NULL after IS NOT")
    fails("metrics.a IN 1", "position 13", "expected '(' after IN")
    fails("tags.a NOT IN 'x'", "position 14", "expected '(' after NOT IN")
    fails("metrics.a IN ()", "position 14", "expected a value after '('", "')'")
    fails("metrics.a IN (1,)", "position 16", "expected a value after ','")
    fails("metrics.a IN (1 2)", "position 16", "expected ',' or ')' in the IN list", "'2'")
    fails("metrics.a IN (1", "position 15", "expected ',' or ')'", "end of input")
    fails("metrics.a = abc", "position 12", "expected a value after '='", "'abc'")
    fails("= 1", "position 0", "expected a field", "'='")
    fails("AND metrics.a = 1", "position 0", "expected a field", "'AND'")
    fails("NOT", "position 3", "expected a field", "end of input")
    fails("'x' = tags.t", "position 0", "expected a field", "string 'x'")


def test_too_many_comparisons_are_rejected() -> None:
    ok = " AND ".join(f"metrics.m{i} > {i}" for i in range(F.MAX_COMPARISONS))
    node = parse_filter(ok)
    assert isinstance(node, And) and len(node.items) == 200
    too_many = ok + " OR metrics.last = 1"
    fails(too_many, f"position {len(ok) + 4}", "too many comparisons", "200")


def test_nesting_deeper_than_the_limit_is_rejected() -> None:
    depth = F.MAX_DEPTH
    assert parse_filter("(" * depth + "metrics.a > 1" + ")" * depth) == A
    assert parse_filter("NOT " * depth + "metrics.a > 1") is not None
    fails("(" * (depth + 1) + "metrics.a > 1" + ")" * (depth + 1), f"position {depth}", "50")
    fails("NOT " * (depth + 1) + "metrics.a > 1", f"position {depth * 4}", "nests deeper")
    fails("(" * 1000, "nests deeper")


def test_a_non_string_filter_is_rejected() -> None:
    fails(42, "expected a string")


def test_parse_errors_are_invalid_input_with_the_filter_field() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_filter("metrics.a >")
    assert info.value.code == "INVALID_PARAMETER_VALUE"
    assert info.value.field == "filter"


# -- order_by ----------------------------------------------------------------


def test_order_by_parses_directions_entities_and_aliases() -> None:
    assert parse_order_by(
        [
            "metrics.acc DESC",
            "params.lr",
            "attributes.start_time ASC",
            "start_time desc",
            "tags.mlflow.runName",
            "metrics.`my acc`  Desc",
            "runName",
        ]
    ) == (
        OrderKey("metric", "acc", True),
        OrderKey("param", "lr", False),
        OrderKey("attribute", "start_time", False),
        OrderKey("attribute", "start_time", True),
        OrderKey("tag", "mlflow.runName", False),
        OrderKey("metric", "my acc", True),
        OrderKey("attribute", "run_name", False),
    )


@pytest.mark.parametrize("items", [None, []])
def test_order_by_without_items_is_empty(items: list[str] | None) -> None:
    assert parse_order_by(items) == ()


def test_order_by_accepts_a_single_string() -> None:
    assert parse_order_by("metrics.acc DESC") == (OrderKey("metric", "acc", True),)


def test_order_by_errors_name_the_bad_item() -> None:
    order_fails(
        ["metrics.a", "metrics.acc DESCX"],
        "'metrics.acc DESCX'",
        "position 12",
        "expected ASC, DESC or end of item",
    )
    order_fails(["attributes.color"], "'attributes.color'", "unknown attribute 'color'")
    order_fails(["metrics.a ASC DESC"], "position 14", "'DESC'")
    order_fails(["foo.bar"], "'foo.bar'", "unknown entity 'foo'")
    order_fails(["   "], "'   '", "expected a field")
    order_fails(["metrics.a", 3], "3", "expected a field")
    order_fails(["DESC"], "'DESC'", "unknown field 'DESC'")
    order_fails(["metrics.`a"], "unterminated quoted name")


def test_order_by_allows_at_most_ten_keys() -> None:
    ten = [f"metrics.m{i}" for i in range(F.MAX_ORDER_KEYS)]
    assert len(parse_order_by(ten)) == 10
    order_fails([*ten, "metrics.x"], "11 keys", "at most 10")


# -- other entities ----------------------------------------------------------

FF = importlib.import_module("ledgerflow.services.projector.filter_fields")


def test_registry_and_experiment_filters_use_the_same_grammar_on_their_own_fields() -> None:
    models, versions, experiments = (
        FF.REGISTERED_MODEL_FIELDS, FF.MODEL_VERSION_FIELDS, FF.EXPERIMENT_FIELDS,
    )  # fmt: skip
    assert parse_filter("name LIKE 'a%' OR NOT tags.team = 'cv'", models) == Or(
        (C("attribute", "name", "LIKE", "a%"), Not(C("tag", "team", "=", "cv")))
    )
    assert parse_filter("version_number IN (1, 2) AND source_path = 's'", versions) == And(
        (C("attribute", "version", "IN", (1, 2)), C("attribute", "source", "=", "s"))
    )
    assert parse_filter("attributes.run_id IS NULL", versions) == C(
        "attribute", "run_id", "IS NULL", None
    )
    assert parse_filter("creation_time > 5 AND tags.k = 'v'", experiments) == And(
        (C("attribute", "creation_time", ">", 5), C("tag", "k", "=", "v"))
    )
    assert parse_order_by(["name DESC", "tags.k"], experiments) == (
        OrderKey("attribute", "name", True),
        OrderKey("tag", "k", False),
    )


def test_registry_filters_accept_quoted_version_numbers_as_mlflow_clients_send_them() -> None:
    versions = FF.MODEL_VERSION_FIELDS
    assert parse_filter("version = '2'", versions) == C("attribute", "version", "=", 2)
    with pytest.raises(InvalidInput, match="position 8: version is compared as a number"):
        parse_filter("version='two'", versions)
    fails("start_time = '2'", "position 13", "write start_time = 2 without quotes")


def test_errors_on_other_entities_name_their_fields_and_positions() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_filter("name = 'x' AND colour = 'red'", FF.MODEL_VERSION_FIELDS)
    assert str(info.value).startswith("Invalid filter at position 15: unknown key 'colour'")
    assert "version" in str(info.value) and info.value.field == "filter"
    with pytest.raises(InvalidInput, match="position 0: unknown entity 'metrics'.*tags or attr"):
        parse_filter("metrics.acc > 1", FF.REGISTERED_MODEL_FIELDS)
    with pytest.raises(InvalidInput, match="position 0: unknown attribute 'status'"):
        parse_order_by(["attr.status"], FF.EXPERIMENT_FIELDS)


# -- properties --------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_\-./:]+")
_PREFIXES = {
    "metric": ["metrics", "metric", "METRICS"],
    "param": ["params", "param", "parameter", "parameters"],
    "tag": ["tags", "tag", "Tags"],
}
_STRING_OPS = ["=", "!=", "<", "<=", ">", ">=", "LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE"]
_NUMBER_OPS = ["=", "!=", "<", "<=", ">", ">="]
_NULL_OPS = ["IS NULL", "IS NOT NULL"]
_LIST_OPS = ["IN", "NOT IN"]


def _quote(text: str, quote: str) -> str:
    return quote + text.replace("\\", "\\\\").replace(quote, quote + quote) + quote


def _render_value(value: object, status: bool, draw: st.DrawFn) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_render_value(v, status, draw) for v in value) + ")"
    if isinstance(value, str):
        if status and draw(st.booleans()):
            value = value.lower()
        return _quote(value, draw(st.sampled_from(["'", '"'])))
    if isinstance(value, float) and math.isinf(value):
        return "Infinity" if value > 0 else draw(st.sampled_from(["-Infinity", "-infinity"]))
    return repr(value)


def _render_field(node: object, draw: st.DrawFn) -> str:
    assert isinstance(node, C)
    if node.entity == "attribute":
        return draw(st.sampled_from(["", "attributes.", "attr.", "run."])) + node.key
    prefix = draw(st.sampled_from(_PREFIXES[node.entity]))
    styles = ["`", '"'] + (["bare"] if _BARE_KEY.fullmatch(node.key) else [])
    style = draw(st.sampled_from(styles))
    return f"{prefix}.{node.key if style == 'bare' else _quote(node.key, style)}"


def _render(node: object, draw: st.DrawFn, minimal: bool) -> str:
    """Render an AST back to filter text, with every group or only needed ones parenthesized."""
    if isinstance(node, C):
        op = node.op if draw(st.booleans()) else node.op.lower()
        if node.op == "!=" and draw(st.booleans()):
            op = "<>"
        status = node.key == "status" and node.op in ("=", "!=", "IN", "NOT IN")
        value = "" if node.value is None else " " + _render_value(node.value, status, draw)
        return f"{_render_field(node, draw)} {op}{value}"
    if isinstance(node, Not):
        inner = _render(node.item, draw, minimal)
        bare = isinstance(node.item, C | Not)
        return f"{draw(st.sampled_from(['NOT', 'not']))} " + (inner if bare else f"({inner})")
    word = " AND " if isinstance(node, And) else " OR "
    parts = []
    for item in node.items:
        text = _render(item, draw, minimal)
        needs = isinstance(item, And | Or) and (isinstance(node, And) or isinstance(item, Or))
        parts.append(f"({text})" if needs or not minimal else text)
    joined = word.join(parts)
    return joined if minimal else f"({joined})"


_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
_keys = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_\-./:]{0,10}", fullmatch=True), _text.filter(bool)
)
_numbers = st.one_of(
    st.integers(-(10**15), 10**15),
    st.floats(allow_nan=False),
)


@st.composite
def _comparisons(draw: st.DrawFn) -> object:
    entity = draw(st.sampled_from(["metric", "param", "tag", "attribute"]))
    key = draw(st.sampled_from(sorted(F.ATTRIBUTES))) if entity == "attribute" else draw(_keys)
    numeric = entity == "metric" or (entity == "attribute" and F.ATTRIBUTES[key] == "number")
    if key == "status" and entity == "attribute":
        scalars: st.SearchStrategy[object] = st.sampled_from(F.STATUSES)
    elif entity == "metric":
        scalars = _numbers
    elif numeric:
        scalars = st.integers(0, 2**45)
    else:
        scalars = _text
    op = draw(st.sampled_from(_NUMBER_OPS + _NULL_OPS + _LIST_OPS if numeric else
                              _STRING_OPS + _NULL_OPS + _LIST_OPS))  # fmt: skip
    if op in _NULL_OPS:
        value = None
    elif op in _LIST_OPS:
        value = tuple(draw(st.lists(scalars, min_size=1, max_size=4)))
    else:
        value = draw(scalars)
    return C(entity, key, op, value)


def _trees(leaves: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    def extend(children: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
        groups = st.lists(children, min_size=2, max_size=4).map(tuple)
        return st.one_of(groups.map(And), groups.map(Or), children.map(Not))

    return st.recursive(leaves, extend, max_leaves=12)


def _depth(node: object) -> int:
    if isinstance(node, C):
        return 0
    if isinstance(node, Not):
        return 1 + _depth(node.item)
    return 1 + max(_depth(i) for i in node.items)


@settings(max_examples=300, deadline=None)
@given(tree=_trees(_comparisons()), minimal=st.booleans(), data=st.data())
def test_rendering_a_random_ast_and_parsing_it_back_gives_the_same_ast(
    tree: object, minimal: bool, data: st.DataObject
) -> None:
    assume(_depth(tree) < F.MAX_DEPTH)
    text = _render(tree, data.draw, minimal)
    assert parse_filter(text) == tree, text


_fragments = st.sampled_from(
    [
        "metrics.a", "params.`p q`", "tags.x.y", "status", "start_time", "attr.run_id", "foo",
        "AND", "OR", "NOT", "IN", "LIKE", "ILIKE", "IS", "NULL", "(", ")", ",", "=", "!=", "<>",
        "<", ">=", "1", "-2.5e3", "NaN", "-Infinity", "'s'", '"d"', "'run''s'", "`", "'", "@",
        "1x", "RUNNING", "",
    ]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(_fragments, max_size=14).map(" ".join)))
def test_any_text_either_parses_or_raises_invalid_input(text: str) -> None:
    try:
        parse_filter(text)
    except InvalidInput as exc:
        assert re.match(r"Invalid filter( at position \d+)?:", str(exc)), str(exc)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=20), _fragments), max_size=4))
def test_any_order_by_either_parses_or_raises_invalid_input(items: list[str]) -> None:
    try:
        parse_order_by(items)
    except InvalidInput as exc:
        assert str(exc).startswith("Invalid order_by"), str(exc)


@pytest.mark.parametrize(
    ("text", "position", "token"),
    [
        ("metrics.acc > 0.9 and params.lr = 0.01", 34, "0.01"),  # unquoted string value
        ("metrics.acc > 0.9 and", 21, ""),  # nothing after AND: the end of the text
        ("metrics.acc >> 1", 13, ">"),
        ("metrics.acc > 1 ) ", 16, ")"),
        ("bogus.acc > 1", 0, "bogus.acc"),
        ("tags.t = 'open", 9, "'"),  # unterminated string: where it starts
        ("metrics.acc > 1.5x", 14, "1.5x"),
        ("metrics.acc ? 1", 12, "?"),
    ],
)
def test_a_filter_error_carries_its_offset_and_the_token_found_there(
    text: str, position: int, token: str
) -> None:
    with pytest.raises(InvalidInput) as e:
        parse_filter(text)
    assert (e.value.field, e.value.position, e.value.token) == ("filter", position, token)
    assert f"position {position}" in e.value.message
    assert text[position : position + len(token)] == token
