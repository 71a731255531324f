"""Which other resources a command's payload names, read the way the services read them:
the run of a `runs:/<id>/<path>` URI, the model of a `models:/<name>...` URI, the models
of a deployment's variants. The commands' `NEEDS` declare a level on each
(`ledgerflow.events.commands.Names`), so a caller cannot reach through a command to
what they may not see. What is malformed names nothing here: the command's own checks
refuse it, naming the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

RUNS_SCHEME = "runs:/"
MODELS_SCHEME = "models:/"


def run_in_uri(uri: object) -> list[str]:
    """`runs:/<run_id>/<path>` -> [run_id]; anything else -> []."""
    if not isinstance(uri, str) or not uri.startswith(RUNS_SCHEME):
        return []
    run_id = uri[len(RUNS_SCHEME) :].strip("/").partition("/")[0]
    return [run_id] if run_id else []


def model_in_uri(uri: object) -> list[str]:
    """`models:/<name>/<ref>` or `models:/<name>@<alias>` -> [name]; anything else -> []."""
    if not isinstance(uri, str) or not uri.startswith(MODELS_SCHEME):
        return []
    rest = uri[len(MODELS_SCHEME) :].strip("/")
    name = rest.split("@", 1)[0].partition("/")[0]
    return [name] if name else []


def model_of_variant(variant: object) -> list[str]:
    """The registered model a variant spec (`{name, model, version, ...}`, as it travels,
    or the typed spec a Client was handed) serves."""
    if isinstance(variant, Mapping):
        model = variant.get("model")
    else:
        model = getattr(variant, "model", None)
    return [model] if isinstance(model, str) and model else []


def models_of_variants(variants: object) -> list[str]:
    if not isinstance(variants, Iterable) or isinstance(variants, str | bytes | Mapping):
        return []
    return [m for v in variants for m in model_of_variant(v)]
