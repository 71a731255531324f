"""MLflow Projects: a directory with an `MLproject` file, run by entry point with typed
parameters (`ledgerflow run DIR -e main -P lr=0.1`).

The file is MLflow's format:

    name: tutorial
    python_env: python_env.yaml        # or conda_env: / docker_env:
    entry_points:
      main:
        parameters:
          alpha: {type: float, default: 0.5}
          data: path
        command: "python train.py --alpha {alpha} --data {data}"

Parameter types are `float`, `int`, `string`, `path` (a local file or folder that must
exist, passed as an absolute path) and `uri` (passed as given; local paths made
absolute). Parameters given but not declared are appended as `--name value`, as
MLflow does. An entry point that is not declared but names a `.py` or `.sh` file in
the project runs that file.

Environments: `python_env`, `conda_env` and `docker_env` are read and recorded on the
job, but Ledgerflow runs the command in the current Python environment (it builds no
virtualenv, conda env or image: these machines have no network to build one from).
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ledgerflow.events.errors import InvalidInput, NotFound

TYPES = ("float", "int", "string", "path", "uri")
ENVIRONMENT_KEYS = ("python_env", "conda_env", "docker_env")


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str = "string"
    default: str | None = None


@dataclass(frozen=True)
class EntryPoint:
    name: str
    command: str
    parameters: dict[str, Parameter] = field(default_factory=dict)


@dataclass(frozen=True)
class Project:
    directory: Path
    name: str
    entry_points: dict[str, EntryPoint]
    environment: dict[str, str] = field(default_factory=dict)
    """The declared environment (`python_env: python_env.yaml`), recorded, not built."""

    def entry_point(self, name: str) -> EntryPoint:
        found = self.entry_points.get(name)
        if found is not None:
            return found
        script = self.directory / name
        if name.endswith((".py", ".sh")) and script.is_file():
            runner = "python" if name.endswith(".py") else "bash"
            return EntryPoint(name, f"{runner} {shlex.quote(name)}")
        known = ", ".join(sorted(self.entry_points)) or "none"
        raise NotFound(
            f"project {self.name!r} has no entry point {name!r} (declared: {known}; a .py or "
            ".sh file in the project also works)",
            kind="entry_point",
            key=name,
        )

    def command(self, entry_point: str, params: Mapping[str, str]) -> tuple[str, dict[str, str]]:
        """The shell command for `entry_point` with `params`, and the parameter values it
        used (defaults included), after checking every value against its declared type."""
        ep = self.entry_point(entry_point)
        missing = [
            p.name for p in ep.parameters.values() if p.default is None and p.name not in params
        ]
        if missing:
            raise InvalidInput(
                f"entry point {ep.name!r} needs parameter(s) {', '.join(missing)}: "
                f"pass them as -P {missing[0]}=VALUE",
                field=missing[0],
            )
        values: dict[str, str] = {}
        for p in ep.parameters.values():
            raw = params.get(p.name, p.default)
            values[p.name] = convert(p, str(raw), self.directory)
        extra = {k: str(v) for k, v in params.items() if k not in ep.parameters}
        quoted = {k: shlex.quote(v) for k, v in values.items()}
        command = ep.command.format(**quoted)
        for k, v in extra.items():
            command += f" --{k} {shlex.quote(v)}"
        return command, {**values, **extra}


def convert(p: Parameter, value: str, directory: Path) -> str:
    """`value` checked against `p`'s type, as the text the command receives."""
    if p.type in ("float", "int"):
        try:
            number = float(value) if p.type == "float" else int(value)
        except ValueError:
            raise InvalidInput(
                f"parameter {p.name!r} must be {'a float' if p.type == 'float' else 'an int'}, "
                f"got {value!r}",
                field=p.name,
            ) from None
        if isinstance(number, float) and not math.isfinite(number):
            raise InvalidInput(f"parameter {p.name!r} must be finite, got {value!r}", field=p.name)
        return value.strip()
    if p.type == "path":
        path = Path(value).expanduser()
        path = path if path.is_absolute() else directory / path
        if not path.exists():
            raise InvalidInput(
                f"parameter {p.name!r} is a path, but {value!r} does not exist "
                f"(relative paths are taken from {directory})",
                field=p.name,
            )
        return str(path.resolve())
    if p.type == "uri":
        if "://" in value or value.startswith("file:"):
            return value
        path = Path(value).expanduser()
        return str((path if path.is_absolute() else directory / path).resolve())
    return value


def _parameter(entry: str, name: str, spec: Any) -> Parameter:
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict):
        raise InvalidInput(
            f"MLproject entry point {entry!r}: parameter {name!r} must be a type name or "
            f"{{type: ..., default: ...}}, got {spec!r}",
            field=name,
        )
    kind = str(spec.get("type", "string"))
    if kind not in TYPES:
        raise InvalidInput(
            f"MLproject entry point {entry!r}: parameter {name!r} has unknown type {kind!r}; "
            f"expected one of {', '.join(TYPES)}",
            field=name,
        )
    default = spec.get("default")
    param = Parameter(name, kind, None if default is None else str(default))
    if param.default is not None and kind in ("float", "int"):
        convert(param, param.default, Path("."))  # a bad default is the file's error
    return param


def load_project(directory: str | Path) -> Project:
    """Read `DIRECTORY/MLproject`; errors name the file and what is wrong in it."""
    root = Path(directory).expanduser().resolve()
    if not root.is_dir():
        raise NotFound(f"project directory {str(directory)!r} does not exist", kind="project")
    file = next((root / n for n in ("MLproject", "mlproject") if (root / n).is_file()), None)
    if file is None:
        raise NotFound(f"{root} has no MLproject file", kind="project", key=str(root))
    try:
        doc = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as e:
        raise InvalidInput(f"{file} is not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidInput(f"{file} must be a mapping with name and entry_points")
    raw_eps = doc.get("entry_points") or {}
    if not isinstance(raw_eps, dict):
        raise InvalidInput(f"{file}: entry_points must be a mapping of name to entry point")
    entry_points: dict[str, EntryPoint] = {}
    for ep_name, ep in raw_eps.items():
        if not isinstance(ep, dict) or not isinstance(ep.get("command"), str):
            raise InvalidInput(f"{file}: entry point {ep_name!r} needs a command (a string)")
        params = ep.get("parameters") or {}
        if not isinstance(params, dict):
            raise InvalidInput(f"{file}: parameters of {ep_name!r} must be a mapping")
        entry_points[str(ep_name)] = EntryPoint(
            str(ep_name),
            ep["command"],
            {str(k): _parameter(str(ep_name), str(k), v) for k, v in params.items()},
        )
    environment = {k: str(doc[k]) for k in ENVIRONMENT_KEYS if k in doc}
    return Project(root, str(doc.get("name") or root.name), entry_points, environment)


def parse_assignments(pairs: list[str] | None) -> dict[str, str]:
    """`-P name=value` options as a mapping, with an error naming a malformed one."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"parameter {pair!r} must look like NAME=VALUE", field="-P")
        out[name.strip()] = value
    return out
