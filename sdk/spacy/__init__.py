"""`ledgerflow.spacy`: spaCy pipelines in MLflow's spacy flavor layout, saved with spaCy's
own `nlp.to_disk`, never pickled.

    model.spacy/   the pipeline directory
    MLmodel        flavors.spacy: spacy_version, data, code

Loads what `mlflow.spacy` saves, and MLflow loads what this saves. pyfunc answers the
categories of a text categorizer (`predictions`, as MLflow does) and the entities of an
entity recognizer (`entities`). spaCy is imported only when a function here needs it.
"""

from ledgerflow.spacy.flavor import FLAVOR_NAME, get_default_pip_requirements, save_model
from ledgerflow.spacy.flavor import LOADER_MODULE as LOADER_MODULE

# What pyfunc calls for a `loader_module: mlflow.spacy` (or `ledgerflow.spacy`) model.
from ledgerflow.spacy.flavor import _load_pyfunc as _load_pyfunc
from ledgerflow.spacy.fluent import load_model, log_model

__all__ = [
    "FLAVOR_NAME",
    "get_default_pip_requirements",
    "load_model",
    "log_model",
    "save_model",
]
