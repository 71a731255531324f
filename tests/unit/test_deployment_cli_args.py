"""The CLI's compact deployment syntax, and the option its errors name."""

from __future__ import annotations

import pytest
import typer

from ledgerflow.cli.deployment_args import (
    parse_canary,
    parse_guardrail,
    parse_variant,
    parse_weights,
    pinned_version,
)


def test_a_variant_is_a_name_a_models_uri_and_an_optional_weight() -> None:
    assert parse_variant("a=models:/iris/1:90") == ("a", "models:/iris/1", 90.0)
    assert parse_variant("b=models:/iris@champion") == ("b", "models:/iris@champion", None)
    assert parse_variant(" c = models:/iris/latest:0.5") == ("c", "models:/iris/latest", 0.5)
    assert pinned_version("models:/iris/12") == ("iris", 12)
    assert pinned_version("models:/iris@champion") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a", "NAME=models:/MODEL/VERSION"),
        ("=models:/m/1", "NAME=models:/MODEL/VERSION"),
        ("a=runs:/x/model", "models:/ URI"),
        ("a=models:/m/1:ten", "is not a number"),
        ("a=models:/m/1:-3", ">= 0"),
    ],
)
def test_a_bad_variant_names_the_option(text: str, message: str) -> None:
    with pytest.raises(typer.BadParameter, match=message) as e:
        parse_variant(text, "--shadow")
    assert e.value.param_hint == "'--shadow'"


def test_weights_canaries_and_guardrails_parse_into_api_values() -> None:
    assert parse_weights(["a=50", "b=50.5"]) == {"a": 50.0, "b": 50.5}
    plan = parse_canary("b:10,50,100", min_requests=7, min_seconds=2.5)
    assert plan["candidate"] == "b"
    assert plan["steps"][1] == {"weight": 50.0, "min_requests": 7, "min_duration_s": 2.5}
    assert parse_guardrail("error_rate<=0.05") == {
        "metric": "error_rate", "bound": "max", "threshold": 0.05, "relative": False,
    }  # fmt: skip
    assert parse_guardrail("latency_p99_ms <= 1.5x")["relative"] is True
    assert parse_guardrail("conversion>=0.9x")["bound"] == "min"


@pytest.mark.parametrize(
    ("call", "option"),
    [
        (lambda: parse_weights([]), "'WEIGHTS'"),
        (lambda: parse_weights(["a=1", "a=2"]), "'WEIGHTS'"),
        (lambda: parse_weights(["a"]), "'WEIGHTS'"),
        (lambda: parse_canary("b"), "'--canary'"),
        (lambda: parse_canary("b:10,200"), "'--canary'"),
        (lambda: parse_guardrail("error_rate<0.1"), "'--guardrail'"),
        (lambda: parse_guardrail("error_rate<=lots"), "'--guardrail'"),
    ],
)
def test_every_parse_error_names_its_option(call: object, option: str) -> None:
    with pytest.raises(typer.BadParameter) as e:
        call()  # type: ignore[operator]
    assert e.value.param_hint == option
