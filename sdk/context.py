"""System tags a run gets automatically: who ran it, from which file, at which commit."""

from __future__ import annotations

import functools
import getpass
import os
import sys
from pathlib import Path


def current_user() -> str:
    """As `getpass.getuser()`: the login name from the environment, else the account of
    this process's user id, looked up once per id (it reads /etc/passwd, and every run and
    command asks)."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        if user := os.environ.get(name):
            return user
    return _account_name(os.getuid()) if hasattr(os, "getuid") else _login_name()


@functools.cache
def _account_name(uid: int) -> str:
    return _login_name()


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def source_name() -> str:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv and sys.argv[0] else "")
    return str(Path(path).resolve()) if path and path != "-c" else "<interactive>"


def git_commit(start: str) -> str | None:
    """The commit checked out in the repository containing `start`, read from .git files."""
    try:
        here = Path(start).resolve()
    except OSError:
        return None
    for folder in [here, *here.parents]:
        git = folder / ".git"
        if git.is_file():  # a worktree or submodule: "gitdir: <path>"
            text = git.read_text(errors="replace").strip()
            if text.startswith("gitdir:"):
                git = (folder / text.split(":", 1)[1].strip()).resolve()
        if git.is_dir():
            return _resolve_head(git)
    return None


def _resolve_head(git: Path) -> str | None:
    try:
        head = (git / "HEAD").read_text().strip()
    except OSError:
        return None
    if not head.startswith("ref:"):
        return head or None
    ref = head.split(":", 1)[1].strip()
    for base in (git, _common_dir(git)):
        ref_file = base / ref
        if ref_file.is_file():
            return ref_file.read_text().strip() or None
        packed = base / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split(" ", 1)[0]
    return None  # a branch with no commits yet


def _common_dir(git: Path) -> Path:
    common = git / "commondir"
    if common.is_file():
        return (git / common.read_text().strip()).resolve()
    return git


def system_tags(parent_run_id: str | None = None) -> dict[str, str]:
    src = source_name()
    tags = {
        "mlflow.user": current_user(),
        "mlflow.source.name": src,
        "mlflow.source.type": "LOCAL",
    }
    commit = git_commit(os.path.dirname(src) if src != "<interactive>" else os.getcwd())
    if commit:
        tags["mlflow.source.git.commit"] = commit
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    return tags
