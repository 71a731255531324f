"""What each searchable entity can be filtered and ordered by.

One filter language serves runs, experiments, registered models and model versions
(:mod:`ledgerflow.services.projector.filters`); a :class:`Fields` tells it the words of
one entity: its attributes and their types, the prefixes of its key/value fields
(``metrics.``, ``params.``, ``tags.``), and the spellings MLflow users already write.
Where each field lives in the views is :mod:`ledgerflow.services.projector.search`'s
business.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "EXPERIMENT_FIELDS",
    "MODEL_VERSION_FIELDS",
    "REGISTERED_MODEL_FIELDS",
    "RUN_ATTRIBUTES",
    "RUN_FIELDS",
    "RUN_STATUSES",
    "Fields",
]  # fmt: skip


@dataclass(frozen=True)
class Fields:
    """The vocabulary of one entity's filters and orderings.

    ``entities`` maps each prefix (lower case) to the kind of field it names: ``metric``
    (compared as numbers), ``param``, ``tag`` or ``attribute``. The first prefix of each
    kind is the one error messages suggest.
    """

    entities: Mapping[str, str]
    attributes: Mapping[str, str]  # attribute -> "string" | "number"
    example: str  # how error messages describe a field: "a field such as ..."
    aliases: Mapping[str, str] = field(default_factory=dict)  # other spelling -> attribute
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # allowed values
    noun: str = "field"  # what an unknown bare name is called in errors
    # MLflow registry clients may quote numbers ("version_number = '2'"); runs may not.
    quoted_numbers: bool = False
    _lookup: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lookup = {name: name for name in self.attributes}
        lookup.update(self.aliases)
        object.__setattr__(self, "_lookup", MappingProxyType(lookup))

    def attribute(self, written: str) -> str | None:
        """The attribute ``written`` names (any case, any alias), or None."""
        return self._lookup.get(written.lower())

    def numeric(self, entity: str, key: str) -> bool:
        return entity == "metric" or (entity == "attribute" and self.attributes[key] == "number")

    @property
    def prefixes(self) -> str:
        """The prefixes to suggest, e.g. ``metrics, params, tags or attributes``."""
        first: dict[str, str] = {}
        for prefix, entity in self.entities.items():
            first.setdefault(entity, prefix)
        *rest, last = first.values()
        return f"{', '.join(rest)} or {last}" if rest else last


_TAGS = {"tags": "tag", "tag": "tag"}
_ATTRIBUTES = {"attributes": "attribute", "attribute": "attribute", "attr": "attribute"}

RUN_ATTRIBUTES: Mapping[str, str] = MappingProxyType({
    "run_id": "string", "run_name": "string", "status": "string", "start_time": "number",
    "end_time": "number", "experiment_id": "string", "user_id": "string",
    "lifecycle_stage": "string", "artifact_uri": "string",
})  # fmt: skip
RUN_STATUSES: tuple[str, ...] = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
_RUN_ENTITIES = {
    "metrics": "metric", "metric": "metric",
    "params": "param", "param": "param", "parameter": "param", "parameters": "param",
    **_TAGS, **_ATTRIBUTES, "run": "attribute",
}  # fmt: skip
RUN_FIELDS = Fields(
    entities=_RUN_ENTITIES,
    attributes=RUN_ATTRIBUTES,
    aliases={"runname": "run_name", "run_uuid": "run_id", "user": "user_id"},
    choices={"status": RUN_STATUSES},
    example="a field such as metrics.acc, params.lr, tags.name or an attribute",
)

_EXPERIMENT_ATTRIBUTES = {
    "name": "string", "experiment_id": "string", "artifact_location": "string",
    "lifecycle_stage": "string", "creation_time": "number", "last_update_time": "number",
}  # fmt: skip
EXPERIMENT_FIELDS = Fields(
    entities={**_TAGS, **_ATTRIBUTES},
    attributes=_EXPERIMENT_ATTRIBUTES,
    example="a field such as name, creation_time, tags.team or an attribute",
)

_MODEL_ATTRIBUTES = {
    "name": "string", "creation_timestamp": "number", "last_updated_timestamp": "number",
}  # fmt: skip
REGISTERED_MODEL_FIELDS = Fields(
    entities={**_TAGS, **_ATTRIBUTES},
    attributes=_MODEL_ATTRIBUTES,
    example="a field such as name or tags.<key>",
    noun="key",
    quoted_numbers=True,
)

_VERSION_ATTRIBUTES = {
    "name": "string", "version": "number", "run_id": "string", "source": "string",
    "current_stage": "string", "user_id": "string", "creation_timestamp": "number",
    "last_updated_timestamp": "number",
}  # fmt: skip
MODEL_VERSION_FIELDS = Fields(
    entities={**_TAGS, **_ATTRIBUTES},
    attributes=_VERSION_ATTRIBUTES,
    aliases={"version_number": "version", "source_path": "source"},
    example="a field such as name, version, run_id, source or tags.<key>",
    noun="key",
    quoted_numbers=True,
)
