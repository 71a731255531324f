"""The spaCy flavor's format: a `spacy.language.Language` pipeline saved with spaCy's own
`nlp.to_disk` (never pickle), in the layout of MLflow's `spacy` flavor:

    model.spacy/   the pipeline directory (config.cfg, meta.json, one folder per component)
    MLmodel        flavors.spacy: spacy_version, data, code

Loading is `spacy.load` of that directory: spaCy builds the components its config names
from the factories registered by installed packages, and reads their weights from
msgpack; nothing stored in the model is imported or unpickled.

pyfunc predicts over one column of texts and answers a table with a row per text:
`predictions` (the `doc.cats` dict) when the pipeline has a text categorizer, as MLflow
answers, and `entities` (a list of `(text, label, start_char, end_char)`) when a component
sets `doc.ents` (`ner`, `entity_ruler`). A pipeline with a text categorizer is written
with MLflow's loader module, so `mlflow.pyfunc` serves it; one with entities only (MLflow
writes no pyfunc block for it) names `ledgerflow.spacy`. What workers and model servers
import; `ledgerflow.spacy.fluent` adds the session (log_model, load_model).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledgerflow.events.errors import InvalidInput
from ledgerflow.models import flavor_io
from ledgerflow.models.model import Model
from ledgerflow.pyfunc.flavor import add_to_model

if TYPE_CHECKING:
    import pandas as pd
    from spacy.language import Language

    from ledgerflow.models.uri import ArtifactSource

log = logging.getLogger("ledgerflow.models")

FLAVOR_NAME = "spacy"
LOADER_MODULE = "mlflow.spacy"
"""The loader module of a pipeline with a text categorizer: MLflow's, which serves it too."""
ENTITIES_LOADER_MODULE = "ledgerflow.spacy"
"""The loader module of a pipeline with entities and no text categorizer: MLflow has none."""
DATA = "model.spacy"
"""The pipeline's directory (also what MLflow reads when an old MLmodel names no `data`)."""


def get_default_pip_requirements() -> list[str]:
    return ["spacy"]


def save_model(
    spacy_model: Language,
    path: str | os.PathLike[str],
    conda_env: flavor_io.CondaEnv = None,
    code_paths: Sequence[str | os.PathLike[str]] | None = None,
    mlflow_model: Model | None = None,
    signature: flavor_io.SignatureArg = None,
    input_example: Any = None,
    pip_requirements: flavor_io.Requirements = None,
    extra_pip_requirements: flavor_io.Requirements = None,
    metadata: dict[str, Any] | None = None,
) -> Model:
    """Save a spaCy pipeline (`spacy.blank("en")` with trained components, `spacy.load(...)`)
    as a model directory at `path`, with `nlp.to_disk`.

    An input example gives the input schema (a column of strings); the output schema is not
    inferred, since its columns hold dicts and lists, which have no column type here."""
    import spacy

    if not isinstance(spacy_model, spacy.language.Language):
        kind = type(spacy_model)
        raise InvalidInput(
            "ledgerflow.spacy saves a spacy.language.Language (a pipeline such as "
            f"spacy.blank('en') or spacy.load(...)), not {kind.__module__}.{kind.__qualname__}",
            field="spacy_model",
        )
    p = flavor_io.prepare_dir(path)
    mlmodel = mlflow_model if mlflow_model is not None else Model()
    if metadata is not None:
        mlmodel.metadata = metadata
    code = flavor_io.copy_code_paths(code_paths, p)
    spacy_model.to_disk(p / DATA)
    wrapper = _SpacyModelWrapper(spacy_model)
    if wrapper.has_cats or wrapper.has_ents:
        loader = LOADER_MODULE if wrapper.has_cats else ENTITIES_LOADER_MODULE
        add_to_model(mlmodel, loader, data=DATA, code=code)
    else:
        log.warning(
            "the spaCy pipeline %s has no text categorizer and sets no entities: saved in the "
            "spacy flavor only (ledgerflow.spacy.load_model loads it; pyfunc cannot serve it)",
            spacy_model.pipe_names,
        )
    mlmodel.add_flavor(FLAVOR_NAME, spacy_version=spacy.about.__version__, data=DATA, code=code)
    return flavor_io.finish_model_dir(
        p,
        mlmodel,
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        conda_env=conda_env,
        default_requirements=get_default_pip_requirements(),
    )


def load(
    model_uri: str | os.PathLike[str],
    dst_path: str | os.PathLike[str] | None = None,
    *,
    source: ArtifactSource | None = None,
) -> Language:
    """The spaCy pipeline saved at `model_uri` (path, file:, or runs:/ and models:/ looked
    up in `source`)."""
    local, conf = flavor_io.open_model(model_uri, dst_path, FLAVOR_NAME, source=source)
    return _load(local, conf)


def _load(model_dir: Path, conf: dict[str, Any]) -> Language:
    import spacy

    data = conf.get("data", DATA)
    pipeline = (model_dir / str(data)).resolve()
    if not pipeline.is_relative_to(model_dir.resolve()) or not (pipeline / "config.cfg").is_file():
        raise InvalidInput(
            f"the spacy model at {str(model_dir)!r} has no pipeline directory {data!r} "
            "(a folder with config.cfg, inside the model directory)",
            field="data",
        )
    return spacy.load(pipeline)


class _SpacyModelWrapper:
    """The pyfunc implementation: `predict(texts)` runs the pipeline over one column of
    texts and answers a row per text, with `predictions` (the cats) and/or `entities`."""

    def __init__(self, spacy_model: Language) -> None:
        from spacy.pipeline import TextCategorizer

        self.spacy_model = spacy_model
        self.has_cats = any(isinstance(pipe, TextCategorizer) for _, pipe in spacy_model.pipeline)
        self.has_ents = any(
            "doc.ents" in spacy_model.get_pipe_meta(name).assigns for name in spacy_model.pipe_names
        )

    def get_raw_model(self) -> Language:
        return self.spacy_model

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        import pandas as pd

        texts = _texts(data)
        docs = list(self.spacy_model.pipe(texts.tolist()))
        columns: dict[str, list[Any]] = {}
        if self.has_cats:
            columns["predictions"] = [dict(doc.cats) for doc in docs]
        if self.has_ents or not self.has_cats:
            columns["entities"] = [
                [(e.text, e.label_, e.start_char, e.end_char) for e in doc.ents] for doc in docs
            ]
        return pd.DataFrame(columns, index=texts.index)


def _texts(data: Any) -> pd.Series[Any]:
    """The texts in `data`: a table's one column, a Series, a list of strings or one string;
    anything else, or a value that is not a string, is InvalidInput naming it."""
    import pandas as pd

    if isinstance(data, str):
        data = [data]
    if isinstance(data, pd.DataFrame):
        if len(data.columns) != 1:
            raise InvalidInput(
                "a spaCy model predicts on one column of texts; got the columns "
                f"{[str(c) for c in data.columns]}",
                field="data",
            )
        texts = data.iloc[:, 0]
    elif isinstance(data, pd.Series):
        texts = data
    elif isinstance(data, list | tuple) or type(data).__name__ == "ndarray":
        texts = pd.Series(list(data), dtype=object)
    else:
        raise InvalidInput(
            "a spaCy model predicts on texts (a one-column table, a Series or a list of "
            f"strings), not {type(data).__module__}.{type(data).__qualname__}",
            field="data",
        )
    for row, value in texts.items():
        if not isinstance(value, str):
            name = texts.name if texts.name is not None else "texts"
            raise InvalidInput(
                f"column {str(name)!r} holds {type(value).__name__} {value!r} at row {row!r}; "
                "a spaCy model predicts on texts (strings)",
                field=str(name),
            )
    return texts


def _load_pyfunc(path: str) -> _SpacyModelWrapper:
    """Called by pyfunc.load_model with the pipeline directory (or the model directory)."""
    model_dir = flavor_io.model_dir_of(path)
    return _SpacyModelWrapper(_load(model_dir, flavor_io.flavor_conf(model_dir, FLAVOR_NAME)))
