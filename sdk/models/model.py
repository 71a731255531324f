"""The MLmodel file: which flavors a model directory holds, its signature and provenance.

Written with the keys MLflow 3 writes, so MLflow reads our directories and we read
its. Keys we do not model (`metadata`, `resources`, `mlflow_version`, ...) are kept
as they were read and written back unchanged.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ledgerflow.events.errors import InvalidInput, NotFound
from ledgerflow.models.signature import ModelSignature

MLMODEL_FILE_NAME = "MLmodel"
LEDGERFLOW_VERSION_KEY = "ledgerflow_version"

_KNOWN = {
    "artifact_path",
    "run_id",
    "utc_time_created",
    "flavors",
    "signature",
    "saved_input_example_info",
    "model_uuid",
    "model_size_bytes",
    "is_signature_from_type_hint",
    "type_hint_from_example",
}


def _now() -> str:
    return str(dt.datetime.now(dt.UTC).replace(tzinfo=None))


class Model:
    """An MLmodel file in memory (the name and shape of `mlflow.models.Model`)."""

    def __init__(
        self,
        artifact_path: str | None = None,
        run_id: str | None = None,
        utc_time_created: str | None = None,
        flavors: dict[str, dict[str, Any]] | None = None,
        signature: ModelSignature | None = None,
        saved_input_example_info: dict[str, Any] | None = None,
        model_uuid: str | None = None,
        model_size_bytes: int | None = None,
        **extra: Any,
    ) -> None:
        self.artifact_path = artifact_path
        self.run_id = run_id
        self.utc_time_created = str(utc_time_created or _now())
        self.flavors: dict[str, dict[str, Any]] = dict(flavors or {})
        self.signature = signature
        self.saved_input_example_info = saved_input_example_info
        self.model_uuid = model_uuid or uuid.uuid4().hex
        self.model_size_bytes = model_size_bytes
        self.extra: dict[str, Any] = {"model_id": None, "prompts": None, **extra}
        if not any(k in extra for k in ("mlflow_version", LEDGERFLOW_VERSION_KEY)):
            from ledgerflow._version import __version__

            self.extra[LEDGERFLOW_VERSION_KEY] = __version__

    @property
    def metadata(self) -> dict[str, Any] | None:
        value = self.extra.get("metadata")
        return value if isinstance(value, dict) else None

    @metadata.setter
    def metadata(self, value: dict[str, Any] | None) -> None:
        if value is None:
            self.extra.pop("metadata", None)
        else:
            self.extra["metadata"] = value

    def add_flavor(self, name: str, **params: Any) -> Model:
        """Record how to load the model as flavor `name` (paths relative to the model dir)."""
        self.flavors[name] = params
        return self

    def get_input_schema(self) -> Any:
        return self.signature.inputs if self.signature is not None else None

    def get_output_schema(self) -> Any:
        return self.signature.outputs if self.signature is not None else None

    def get_params_schema(self) -> Any:
        return self.signature.params if self.signature is not None else None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = dict(self.extra)
        d.update(
            flavors=self.flavors,
            utc_time_created=self.utc_time_created,
            model_uuid=self.model_uuid,
        )
        if self.artifact_path is not None:
            d["artifact_path"] = self.artifact_path
        if self.run_id is not None:
            d["run_id"] = self.run_id
        if self.signature is not None:
            d["signature"] = self.signature.to_dict()
            d["is_signature_from_type_hint"] = False
            d["type_hint_from_example"] = False
        if self.saved_input_example_info is not None:
            d["saved_input_example_info"] = self.saved_input_example_info
        if self.model_size_bytes is not None:
            d["model_size_bytes"] = self.model_size_bytes
        return d

    def to_yaml(self) -> str:
        return str(yaml.safe_dump(self.to_dict(), default_flow_style=False))

    def __str__(self) -> str:
        return self.to_yaml()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the YAML file; `path` is the MLmodel file or the model directory."""
        p = Path(path)
        if p.is_dir():
            p = p / MLMODEL_FILE_NAME
        p.write_text(self.to_yaml())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Model:
        """Read an MLmodel file, given it or the model directory holding it."""
        p = Path(path)
        if p.is_dir():
            p = p / MLMODEL_FILE_NAME
        if not p.is_file():
            raise NotFound(
                f"no {MLMODEL_FILE_NAME} file at {str(p)!r}; is this a model directory?",
                kind="model",
                key=str(path),
            )
        try:
            d = yaml.safe_load(p.read_text())
        except yaml.YAMLError as e:
            raise InvalidInput(f"{p} is not valid YAML: {e}") from None
        if not isinstance(d, dict):
            raise InvalidInput(f"{p} does not hold an MLmodel mapping")
        return cls.from_dict(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Model:
        d = dict(d)
        sig = d.pop("signature", None)
        d.pop("is_signature_from_type_hint", None)
        d.pop("type_hint_from_example", None)
        known = {k: d.pop(k) for k in list(d) if k in _KNOWN}
        flavors = known.pop("flavors", None) or {}
        if not isinstance(flavors, dict):
            raise InvalidInput("MLmodel 'flavors' must be a mapping")
        return cls(
            signature=ModelSignature.from_dict(sig) if isinstance(sig, dict) else None,
            flavors=flavors,
            **known,
            **d,
        )


@dataclass(frozen=True)
class ModelInfo:
    """What `log_model` returns: where the model went and what it is."""

    model_uri: str
    artifact_path: str
    name: str
    run_id: str
    flavors: dict[str, Any]
    signature: ModelSignature | None
    model_uuid: str
    utc_time_created: str
    saved_input_example_info: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    registered_model_version: int | None = None

    @classmethod
    def from_model(
        cls, model: Model, *, run_id: str, name: str, registered_model_version: int | None = None
    ) -> ModelInfo:
        return cls(
            model_uri=f"runs:/{run_id}/{name}",
            artifact_path=name,
            name=name,
            run_id=run_id,
            flavors=model.flavors,
            signature=model.signature,
            model_uuid=model.model_uuid,
            utc_time_created=model.utc_time_created,
            saved_input_example_info=model.saved_input_example_info,
            metadata=model.metadata,
            registered_model_version=registered_model_version,
        )
