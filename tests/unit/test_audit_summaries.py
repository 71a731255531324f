"""The audit index's text: summaries, and the JSON of before/after and of a rollup's keys,
written by the fast paths a bulk replay takes exactly as the plain formulations write
them (services/projector/audit_handlers.py)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ledgerflow.events import auth_payloads as a
from ledgerflow.events import payloads as p
from ledgerflow.events.envelope import Event
from ledgerflow.services.projector.audit_handlers import _json, _keys_json, _text, summarize

text = st.text(max_size=12)
plain = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text)
jsonable = st.recursive(
    plain, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3)
)


def _dict_text(value: dict[Any, Any]) -> str:
    """How a dict of text was written before the fast path: one f-string per item."""
    if all(isinstance(v, str) for v in value.values()):
        return ",".join([f"{k}:{v}" for k, v in value.items()])
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


@given(st.dictionaries(text, text, max_size=8))
def test_params_and_tags_read_key_colon_value_as_before(value: dict[str, str]) -> None:
    assert _text(value) == _dict_text(value)


@given(
    st.one_of(
        st.dictionaries(text, st.one_of(text, st.integers()), max_size=5),
        st.dictionaries(st.integers(), text, max_size=5),
    )
)
def test_a_dict_holding_other_than_text_is_written_as_before(value: dict[Any, Any]) -> None:
    assert _text(value) == _dict_text(value)


@given(st.lists(text, max_size=8))
def test_a_rollup_s_keys_are_the_json_of_the_list(keys: list[str]) -> None:
    assert _keys_json(keys) == json.dumps(keys)


@given(st.dictionaries(text, jsonable, max_size=4) | st.dictionaries(text, text, max_size=1))
def test_before_and_after_are_compact_sorted_json(side: dict[str, Any]) -> None:
    assert _json(side) == json.dumps(side, sort_keys=True, separators=(",", ":"))
    assert _json(None) is None


def test_a_summary_leaves_out_empty_values_but_shows_zero_and_false() -> None:
    logged = p.RunArtifactLogged(run_id="r", path="", size=0, sha256="a" * 64)
    assert summarize(Event.of(logged)) == f"size=0 sha256={'a' * 64}"
    created = p.ExperimentCreated(experiment_id="7", name="cv", artifact_location="/a")
    assert summarize(Event.of(created)) == "name=cv artifact_location=/a"  # tags {} left out
    user = a.UserCreated(name="bob", admin=False)
    assert summarize(Event.of(user)) == "admin=false"
    started = p.RunStarted(run_id="r", experiment_id="7", run_name="", start_time=0,
                           user_id="u", artifact_uri="/a", tags={"t": "1", "u": "2"})  # fmt: skip
    assert summarize(Event.of(started)) == (
        "experiment_id=7 start_time=0 user_id=u artifact_uri=/a tags=t:1,u:2"
    )
