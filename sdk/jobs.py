"""`lf.jobs`: run training code on Ray with the SDK connected, and follow it.

    import ledgerflow as lf

    job = lf.jobs.submit(train, params={"lr": 0.1}, experiment_name="cifar", cpus=2)
    job.wait()
    print(job.status, job.run_id, job.logs())

    # N workers, one run (Ray Train's TorchTrainer, gloo on CPU):
    job = lf.jobs.submit(train_loop, config={"epochs": 2}, num_workers=2)

The target is a function (called as `fn(**params)` in a fresh process), a `.py`
script or shell command (run with params appended as `--name value`), or
`package.module:function`. With `num_workers` > 1 (or `distributed=True`) the
function is Ray Train's per-worker loop, called with `config`. Jobs run where
LEDGERFLOW_RAY_ADDRESS says (`local` Ray by default; `inline` runs them in a
thread of this process, without Ray). See docs/jobs.md.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import shlex
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledgerflow import session
from ledgerflow.events.errors import InvalidInput

if TYPE_CHECKING:
    from ledgerflow._ports import JobsPort
    from ledgerflow.client import Client
    from ledgerflow.entities import Run
    from ledgerflow.events.job_entities import Job as JobInfo
    from ledgerflow.workers.jobs import JobLauncher

__all__ = ["Job", "cancel", "get", "list_jobs", "logs", "run_project", "submit", "wait"]


class Job:
    """A submitted job. Attributes read the views each time, so they are current."""

    def __init__(self, job_id: str, tracking_uri: str | None = None) -> None:
        self.job_id = job_id
        self._uri = tracking_uri

    @property
    def info(self) -> JobInfo:
        return get(self.job_id, tracking_uri=self._uri)

    @property
    def status(self) -> str:
        return self.info.status

    @property
    def run_id(self) -> str:
        return self.info.run_id

    @property
    def error(self) -> str | None:
        return self.info.error

    @property
    def run(self) -> Run:
        from ledgerflow.client import Client

        return Client(self._uri).get_run(self.run_id)

    def logs(self) -> str:
        return logs(self.job_id, tracking_uri=self._uri)

    def wait(self, timeout: float | None = None) -> Job:
        wait(self.job_id, timeout, tracking_uri=self._uri)
        return self

    def cancel(self, reason: str = "") -> Job:
        cancel(self.job_id, reason, tracking_uri=self._uri)
        return self

    def __repr__(self) -> str:
        return f"<Job {self.job_id} {self.status}>"


def _client(tracking_uri: str | None) -> Client:
    from ledgerflow.client import Client

    return Client(tracking_uri)


def _jobs(tracking_uri: str | None) -> JobsPort:
    """The job views, caught up; a gateway URL answers that jobs need the event log."""
    backend = session.backend_for(session.settings_for(tracking_uri))
    jobs = backend.jobs
    backend.refresh()
    return jobs


def _launcher(tracking_uri: str | None, ray_address: str | None = None) -> JobLauncher:
    """The session's launcher for this backend and runtime (LEDGERFLOW_RAY_ADDRESS when
    `ray_address` is None)."""
    backend = session.backend_for(session.settings_for(tracking_uri))
    backend.jobs  # noqa: B018 - on a gateway URL, the error that says to submit where the log is
    return session.job_launcher(backend.embedded(), ray_address)


def resolve(target: str) -> Callable[..., Any] | str:
    """`pkg.module:function` as the function; anything else stays a command."""
    module, sep, attr = target.partition(":")
    if sep and module and attr.isidentifier() and "/" not in module and " " not in target:
        try:
            fn = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise InvalidInput(f"cannot load {target!r}: {e}", field="target") from None
        if not callable(fn):
            raise InvalidInput(f"{target!r} is not a function", field="target")
        return fn  # type: ignore[no-any-return]
    return target


def command_line(target: str, params: Mapping[str, Any]) -> str:
    """A script or shell command with params appended as `--name value`."""
    base = target.strip()
    if not base:
        raise InvalidInput("the job's command is empty", field="target")
    if base.endswith(".py") and " " not in base:
        if not Path(base).is_file():
            raise InvalidInput(f"script {base!r} does not exist", field="target")
        base = f"python {shlex.quote(str(Path(base).resolve()))}"
    return base + "".join(f" --{k} {shlex.quote(str(v))}" for k, v in params.items())


def submit(
    target: Callable[..., Any] | str,
    *,
    params: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    name: str | None = None,
    experiment_id: str | None = None,
    experiment_name: str | None = None,
    cpus: float = 1.0,
    gpus: float = 0.0,
    memory: int | None = None,
    num_workers: int = 1,
    distributed: bool | None = None,
    ray_address: str | None = None,
    tracking_uri: str | None = None,
    _command: str | None = None,
    _project: Mapping[str, str] | None = None,
    _cwd: str | None = None,
) -> Job:
    """Run `target` as a job and return at once; `Job.wait()` waits for its end."""
    import cloudpickle

    from ledgerflow import fluent
    from ledgerflow.events import job_commands as jc

    params = dict(params or {})
    if isinstance(target, str) and _command is None:
        target = resolve(target)
    distributed = num_workers > 1 if distributed is None else distributed
    c = _client(tracking_uri)
    backend = session.backend_for(session.settings_for(tracking_uri))
    jobs = backend.jobs  # on a gateway URL, the error that says to submit where the log is
    tracking = backend.tracking
    if experiment_name is not None:
        exp_id = tracking.get_or_create_experiment(experiment_name, actor=c._actor).experiment_id
    elif experiment_id is not None:
        exp_id = str(experiment_id)
    elif tracking_uri is None:
        exp_id = fluent._active_experiment_id()
    else:
        exp_id = tracking.default_experiment(actor=c._actor).experiment_id
    common: dict[str, Any] = {
        "experiment_id": exp_id,
        "user_id": str(c._settings.user or _user()),
        "params": {**params, **(config or {})},
        "cpus": cpus,
        "gpus": gpus,
        "memory": memory,
        "project": dict(_project or {}),
        "cwd": _cwd,
        "runtime": ray_address,
    }
    if isinstance(target, str):
        if distributed:
            raise InvalidInput("a distributed job runs a function, not a command", field="target")
        cmd = _command or command_line(target, params)
        command = jc.SubmitJob(
            name=name or target.split()[0], kind="command", entry_point=cmd, command=cmd, **common
        )
    else:
        label = f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', '?')}"
        if not distributed:
            fn_bytes = cloudpickle.dumps((_by_value(target), params))
            command = jc.SubmitJob(
                name=name or label, kind="function", entry_point=label, function=fn_bytes,
                **common,
            )  # fmt: skip
        else:
            from ledgerflow.workers.distributed import Plan

            plan = Plan(
                _by_value(target), dict(config or params), num_workers, gpus, cpus,
                _worker_session,
            )  # fmt: skip
            command = jc.SubmitJob(
                name=name or label, kind="distributed", entry_point=label,
                function=cloudpickle.dumps(plan), num_workers=num_workers, **common,
            )  # fmt: skip
    return _job(jobs.execute(command, actor=c._actor), tracking_uri)


def _worker_session(loop: Callable[..., Any], config: dict[str, Any]) -> None:
    """A distributed job's worker running the user's loop: the SDK pointed at the job's run
    with this worker's rank (both in its environment), and what it buffered written
    before Ray stops the worker."""
    import inspect
    import os

    from ledgerflow import fluent
    from ledgerflow.events.settings import PREFIX

    fluent.set_tracking_uri(os.environ[PREFIX + "TRACKING_URI"])  # re-read with the rank
    fluent.start_run()
    try:
        if inspect.signature(loop).parameters:
            loop(config)
        else:
            loop()
    finally:
        fluent.flush()


def run_project(
    uri: str | Path,
    entry_point: str = "main",
    parameters: Mapping[str, Any] | None = None,
    *,
    on_ray: bool = False,
    ray_address: str | None = None,
    experiment_name: str | None = None,
    experiment_id: str | None = None,
    name: str | None = None,
    cpus: float = 1.0,
    gpus: float = 0.0,
    memory: int | None = None,
    synchronous: bool = True,
    tracking_uri: str | None = None,
) -> Job:
    """Run an MLproject directory's entry point (as `mlflow.projects.run`): here in a
    child process, or on Ray with `on_ray`. Parameters are checked against their
    declared types before anything runs. The declared environment (python_env,
    conda_env, docker_env) is recorded on the job; the command runs in this Python
    environment (see ledgerflow.workers.mlproject)."""
    from ledgerflow.workers.mlproject import load_project

    project = load_project(uri)
    command, values = project.command(
        entry_point, {str(k): str(v) for k, v in (parameters or {}).items()}
    )
    address = (ray_address or _client(tracking_uri)._settings.ray_address) if on_ray else "inline"
    job = submit(
        command, params=values, name=name or f"{project.name}:{entry_point}",
        experiment_id=experiment_id, experiment_name=experiment_name, cpus=cpus, gpus=gpus,
        memory=memory, ray_address=address, tracking_uri=tracking_uri, _command=command,
        _project={"name": project.name, "entry_point": entry_point, **project.environment},
        _cwd=str(project.directory),
    )  # fmt: skip
    if synchronous:
        job.wait()
    return job


def _by_value(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Functions from `__main__` or a test module travel by value, so the job's process
    need not import the submitter's script."""
    import cloudpickle

    module = sys.modules.get(getattr(fn, "__module__", "") or "")
    if module is not None and module.__name__ not in ("builtins",):
        file = getattr(module, "__file__", "") or ""
        if module.__name__ == "__main__" or "site-packages" not in file:
            with contextlib.suppress(ValueError):
                cloudpickle.register_pickle_by_value(module)
    return fn


def _user() -> str:
    from ledgerflow.context import current_user

    return current_user()


def _job(info: JobInfo, tracking_uri: str | None) -> Job:
    return Job(info.job_id, tracking_uri)


def get(job_id: str, *, tracking_uri: str | None = None) -> JobInfo:
    return _jobs(tracking_uri).get(job_id)


def list_jobs(
    status: str | None = None, max_results: int = 100, *, tracking_uri: str | None = None
) -> builtins.list[JobInfo]:
    return _jobs(tracking_uri).list_jobs(status, max_results)


def logs(job_id: str, *, tracking_uri: str | None = None) -> str:
    return _launcher(tracking_uri).logs(job_id)


def wait(job_id: str, timeout: float | None = None, *, tracking_uri: str | None = None) -> JobInfo:
    return _launcher(tracking_uri).wait(job_id, timeout)


def cancel(job_id: str, reason: str = "", *, tracking_uri: str | None = None) -> JobInfo:
    from ledgerflow.events import job_commands as jc

    c = _client(tracking_uri)
    return _jobs(tracking_uri).execute(jc.CancelJob(job_id=job_id, reason=reason), actor=c._actor)


list = list_jobs  # `lf.jobs.list()` reads like the CLI's `jobs list`
