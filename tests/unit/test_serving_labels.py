"""TF Serving's labels fold from the registry's alias events as the registry views fold
them: set, moved, deleted, and dropped with their version or model; a model renamed keeps
them."""

from __future__ import annotations

from ledgerflow.events import model_payloads as m
from ledgerflow.services.serving.labels import Aliases


def test_aliases_follow_sets_deletes_and_the_versions_and_models_they_point_into() -> None:
    aliases = Aliases()
    for payload in (
        m.ModelAliasSet(name="clf", alias="champion", version=1),
        m.ModelAliasSet(name="clf", alias="next", version=2),
        m.ModelAliasSet(name="clf", alias="champion", version=2),
        m.ModelAliasSet(name="other", alias="prod", version=3),
    ):
        aliases.apply(payload)
    assert aliases.of("clf") == {"champion": 2, "next": 2}

    aliases.apply(m.ModelAliasDeleted(name="clf", alias="next"))
    assert aliases.of("clf") == {"champion": 2}
    aliases.apply(m.ModelVersionDeleted(name="clf", version=2))
    assert aliases.of("clf") == {}

    aliases.apply(m.RegisteredModelRenamed(name="other", new_name="renamed"))
    assert aliases.of("other") == {} and aliases.of("renamed") == {"prod": 3}
    aliases.apply(m.RegisteredModelDeleted(name="renamed"))
    assert aliases.of("renamed") == {}
