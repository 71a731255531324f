"""The environment files of a model directory: requirements.txt, conda.yaml, python_env.yaml.

Same names and layout as MLflow, so `mlflow models serve` and friends can rebuild
the environment. Requirements are pinned to what is installed right now.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ledgerflow.events.errors import InvalidInput

REQUIREMENTS_FILE_NAME = "requirements.txt"
CONDA_ENV_FILE_NAME = "conda.yaml"
PYTHON_ENV_FILE_NAME = "python_env.yaml"

PYTHON_VERSION = platform.python_version()


def installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def pinned(distribution: str) -> str:
    """`scikit-learn==1.5.2` (local labels like `+cpu` dropped so pip can install it),
    or the bare name when it is not installed."""
    version = installed_version(distribution)
    if version is None:
        return distribution
    return f"{distribution}=={version.split('+', 1)[0]}"


def _read_requirements(value: str | os.PathLike[str] | Sequence[str], what: str) -> list[str]:
    if isinstance(value, str | os.PathLike):
        p = Path(value)
        if not p.is_file():
            raise InvalidInput(
                f"{what} must be a list of requirement strings or a requirements file; "
                f"{str(value)!r} is not a file",
                field=what,
            )
        lines = p.read_text().splitlines()
    else:
        lines = list(value)
    out = []
    for line in lines:
        if not isinstance(line, str):
            raise InvalidInput(f"{what} entries must be strings, got {line!r}", field=what)
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def _name(requirement: str) -> str:
    m = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    return re.sub(r"[-_.]+", "-", m.group(0)).lower() if m else requirement


def resolve_requirements(
    default: Sequence[str],
    pip_requirements: str | os.PathLike[str] | Sequence[str] | None,
    extra_pip_requirements: str | os.PathLike[str] | Sequence[str] | None,
) -> list[str]:
    """The final requirement lines: `pip_requirements` replaces the defaults; `extra_...`
    adds to them (an extra naming a default package replaces that default)."""
    if pip_requirements is not None and extra_pip_requirements is not None:
        raise InvalidInput(
            "pass pip_requirements (replaces the defaults) or extra_pip_requirements (adds to "
            "them), not both"
        )
    if pip_requirements is not None:
        return _read_requirements(pip_requirements, "pip_requirements")
    extras = (
        _read_requirements(extra_pip_requirements, "extra_pip_requirements")
        if extra_pip_requirements is not None
        else []
    )
    overridden = {_name(r) for r in extras}
    base = [pinned(d) for d in default]
    return [r for r in base if _name(r) not in overridden] + extras


CondaEnv = str | os.PathLike[str] | Mapping[str, Any] | None
"""A conda environment as MLflow's `conda_env=` takes it: a dict, or a YAML file's path."""


def read_conda_env(value: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """The conda environment `value` names, checked: a mapping whose `dependencies` list
    holds strings (`python=3.11`) and at most one `{"pip": [...]}` of strings."""
    if isinstance(value, str | os.PathLike):
        p = Path(value)
        if not p.is_file():
            raise InvalidInput(
                f"conda_env must be a dict or a conda YAML file; {str(value)!r} is not a file",
                field="conda_env",
            )
        try:
            doc = yaml.safe_load(p.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise InvalidInput(
                f"conda_env file {str(value)!r} is not YAML: {e}", field="conda_env"
            ) from None
    else:
        doc = value
    if not isinstance(doc, Mapping):
        raise InvalidInput(
            "conda_env must be a mapping (name, channels, dependencies)", field="conda_env"
        )
    deps = doc.get("dependencies", [])
    pips = [d for d in deps if isinstance(d, Mapping)] if isinstance(deps, list) else None
    if (
        pips is None
        or len(pips) > 1
        or any(not isinstance(d, str | Mapping) for d in deps)
        or any(set(d) != {"pip"} or not _strings(d["pip"]) for d in pips)
    ):
        raise InvalidInput(
            "conda_env's dependencies must be a list of strings and at most one "
            '{"pip": [requirement, ...]}',
            field="conda_env",
        )
    try:
        yaml.safe_dump(dict(doc))
    except yaml.YAMLError as e:  # a value YAML has no plain form for (an object, a set)
        raise InvalidInput(
            f"conda_env holds a value YAML cannot write: {e}", field="conda_env"
        ) from None
    return dict(doc)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def conda_pip_requirements(env: Mapping[str, Any]) -> list[str]:
    """The pip requirements of a conda environment (`read_conda_env` checked it)."""
    for dep in env.get("dependencies", []):
        if isinstance(dep, Mapping):
            return list(dep["pip"])
    return []


def conda_python_version(env: Mapping[str, Any]) -> str | None:
    """The Python version a conda environment pins (`python=3.11.7`, `python==3.11`)."""
    for dep in env.get("dependencies", []):
        if isinstance(dep, str):
            m = re.fullmatch(r"python\s*==?\s*([0-9][0-9.]*)", dep.strip())
            if m:
                return m.group(1)
    return None


def write_environment(
    path: Path, requirements: Sequence[str], conda_env: Mapping[str, Any] | None = None
) -> None:
    """Write the three environment files into model directory `path`: `conda_env` as
    given (its pip requirements are `requirements.txt`, its Python `python_env.yaml`'s),
    else one made of `requirements` and this Python."""
    if conda_env is not None:
        requirements = conda_pip_requirements(conda_env)
    reqs = [r for r in requirements if not r.startswith("-c ")]
    (path / REQUIREMENTS_FILE_NAME).write_text("\n".join(reqs))
    pip_version = installed_version("pip")
    conda = dict(conda_env) if conda_env is not None else {
        "channels": ["conda-forge"],
        "dependencies": [
            f"python={PYTHON_VERSION}",
            f"pip<={pip_version}" if pip_version else "pip",
            {"pip": reqs},
        ],
        "name": "mlflow-env",
    }  # fmt: skip
    (path / CONDA_ENV_FILE_NAME).write_text(yaml.safe_dump(conda, default_flow_style=False))
    build = [pinned(p) for p in ("pip", "setuptools", "wheel")]
    python = (conda_python_version(conda_env) if conda_env is not None else None) or PYTHON_VERSION
    python_env = {
        "python": python,
        "build_dependencies": build,
        "dependencies": [f"-r {REQUIREMENTS_FILE_NAME}"],
    }
    (path / PYTHON_ENV_FILE_NAME).write_text(
        yaml.safe_dump(python_env, sort_keys=False, default_flow_style=False)
    )
