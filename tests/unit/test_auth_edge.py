"""What people type, parsed at the Client edge (lifetimes, levels, kinds, principals), and
the user an actor names."""

from __future__ import annotations

import pytest

from ledgerflow._auth_methods import kind_of, level_of, parse_duration, principal_of
from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.permissions import Level, actor_of, token_of, user_of


@pytest.mark.parametrize(
    ("given", "seconds"),
    [
        (None, None),
        (3600, 3600.0),
        (0.5, 0.5),
        ("3600", 3600.0),
        ("45s", 45.0),
        ("90m", 5400.0),
        ("12h", 43_200.0),
        ("30d", 2_592_000.0),
        ("2w", 1_209_600.0),
        ("1d12h", 129_600.0),
        (" 1.5H ", 5400.0),
    ],
)
def test_a_lifetime_is_seconds_or_a_number_with_a_unit(given: object, seconds: float | None):
    assert parse_duration(given) == seconds  # type: ignore[arg-type]


@pytest.mark.parametrize("given", ["", "abc", "30x", "d30", "1d junk", 0, -5, "0h", True])
def test_anything_else_is_refused_naming_the_field(given: object):
    with pytest.raises(InvalidInput) as e:
        parse_duration(given, "--expires")  # type: ignore[arg-type]
    assert e.value.field == "--expires" and "--expires" in e.value.message


def test_a_bare_name_is_a_user_and_prefixed_principals_pass_through():
    assert principal_of("alice") == "user:alice"
    assert principal_of(" user:bob ") == "user:bob"
    assert principal_of("group:team-cv") == "group:team-cv"
    assert principal_of("robot:x") == "robot:x"  # left for the command to refuse, named


def test_kinds_and_levels_are_read_in_any_case():
    assert kind_of("Experiment") == "experiment"
    assert level_of("edit") == "EDIT" and level_of(Level.MANAGE) == "MANAGE"
    with pytest.raises(InvalidInput) as bad_kind:
        kind_of("run")
    assert bad_kind.value.field == "kind"
    with pytest.raises(InvalidInput) as bad_level:
        level_of("write")
    assert bad_level.value.field == "level"


def test_an_actor_names_its_user_whether_authenticated_or_local():
    assert user_of(actor_of("alice", "0193")) == "alice"
    assert token_of(actor_of("alice", "0193")) == "0193"
    assert user_of("alice") == "alice"
    assert user_of("user:alice") == "alice"  # the SDK's actor where nobody authenticated
    assert token_of("user:alice") is None
