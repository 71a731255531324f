"""The environment files of a model directory: requirements.txt, conda.yaml, python_env.yaml.

Same names and layout as MLflow, so `mlflow models serve` and friends can rebuild
the environment. Requirements are pinned to what is installed right now.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
from collections.abc import Sequence
from pathlib import Path

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


def write_environment(path: Path, requirements: Sequence[str]) -> None:
    """Write the three environment files into model directory `path`."""
    reqs = [r for r in requirements if not r.startswith("-c ")]
    (path / REQUIREMENTS_FILE_NAME).write_text("\n".join(reqs))
    pip_version = installed_version("pip")
    conda = {
        "channels": ["conda-forge"],
        "dependencies": [
            f"python={PYTHON_VERSION}",
            f"pip<={pip_version}" if pip_version else "pip",
            {"pip": reqs},
        ],
        "name": "mlflow-env",
    }
    (path / CONDA_ENV_FILE_NAME).write_text(yaml.safe_dump(conda, default_flow_style=False))
    build = [pinned(p) for p in ("pip", "setuptools", "wheel")]
    python_env = {
        "python": PYTHON_VERSION,
        "build_dependencies": build,
        "dependencies": [f"-r {REQUIREMENTS_FILE_NAME}"],
    }
    (path / PYTHON_ENV_FILE_NAME).write_text(
        yaml.safe_dump(python_env, sort_keys=False, default_flow_style=False)
    )
