"""What runs where a job runs: inside a Ray task (or a thread, for `inline`).

The job's code runs in a child process, with its output in a log file, so a crash
of the user's code (even a segfault) is a failed job rather than a dead worker,
and cancelling kills exactly the job's process group. Cancellation is an event:
whoever cancels appends `job.cancelled`, and this supervisor, which checks the
job's status twice a second, stops the process. That works from any process on
any host that shares the event log, with no Ray handle.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledgerflow.events.errors import Conflict, InvalidInput
from ledgerflow.events.settings import PREFIX, Settings, load_settings

POLL_S = 0.5
KILL_GRACE_S = 5.0
TAIL_BYTES = 64 * 1024
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_live: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()
_closing = False  # set by stop_all: no job process may start after it
_stopped: set[subprocess.Popen[bytes]] = set()  # the processes stop_all ended
RUN_STATUS = {"FINISHED": "FINISHED", "FAILED": "FAILED", "CANCELLED": "KILLED"}


class StoppedAtExit(Exception):
    """The job's process was stopped because the process supervising it is exiting;
    whoever stopped it records the job's end and says why."""


@dataclass(frozen=True)
class JobSpec:
    """Everything a worker needs to run a job; travels to Ray pickled."""

    job_id: str
    run_id: str
    kind: str
    settings: dict[str, Any]
    """The submitter's explicitly set settings, so the job's code logs where it does."""
    command: str | None = None
    """A shell command line (kind `command`)."""
    function: bytes | None = None
    """cloudpickled (callable, kwargs) for kind `function`, or the distributed plan."""
    cwd: str | None = None
    actor: str = "service:jobs"


def settings_env(settings: Mapping[str, Any]) -> dict[str, str]:
    """`LEDGERFLOW_*` variables that reproduce `settings` in a child process."""
    out = {}
    for key, value in settings.items():
        if value is None:
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        out[PREFIX + key.upper()] = text
    return out


def job_dir(settings: Settings, job_id: str) -> Path:
    """Where a job's output goes: beside the data when there is a data directory."""
    try:
        base = settings.data_dir / "jobs"
    except InvalidInput:
        import tempfile

        base = Path(tempfile.gettempdir()) / "ledgerflow-jobs"
    path = base / job_id
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_tail(path: Path, limit: int = TAIL_BYTES) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - limit))
            return f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def failure_reason(returncode: int, log: str) -> str:
    """`exit status 1: ValueError: bad data`: the exit and the last line the job printed
    (for a Python traceback, the exception)."""
    if returncode < 0:
        try:
            how = f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            how = f"killed by signal {-returncode}"
    else:
        how = f"exit status {returncode}"
    plain = _ANSI.sub("", log)
    lines = [line.strip() for line in plain.splitlines() if line.strip()]
    return f"{how}: {lines[-1]}" if lines else how


def child_env(spec: JobSpec, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
    env.update(settings_env(spec.settings))
    env[PREFIX + "RUN_ID"] = spec.run_id
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.update(extra or {})
    return env


def supervise(
    argv: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log_path: Path,
    cancelled: Callable[[], bool],
) -> tuple[int, bool]:
    """Run `argv` to its end or until `cancelled()`; (exit status, whether cancelled).
    Raises StoppedAtExit when stop_all ended it."""
    with log_path.open("ab") as log, _live_lock:
        if _closing:
            raise RuntimeError("the process that runs this job is exiting")
        proc = subprocess.Popen(
            argv, cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        _live.add(proc)
    try:
        while True:
            try:
                code = proc.wait(POLL_S)
            except subprocess.TimeoutExpired:
                pass
            else:
                if proc in _stopped:
                    raise StoppedAtExit(f"process {proc.pid} stopped at exit")
                return code, False
            if cancelled():
                _stop(proc)
                return proc.returncode, True
    except StoppedAtExit:
        raise
    except BaseException:
        _stop(proc)
        raise
    finally:
        _live.discard(proc)


def stop_all() -> None:
    """Stop every job process this process supervises (it is exiting: an inline job
    must not outlive the process that would record its end)."""
    global _closing
    with _live_lock:  # a job starting now either is in _live or sees _closing
        _closing = True
        procs = list(_live)
        _stopped.update(procs)
    for proc in procs:
        _stop(proc, grace=1.0)


def _stop(proc: subprocess.Popen[bytes], grace: float = KILL_GRACE_S) -> None:
    """SIGTERM to the job's process group, SIGKILL if it is still there after a grace."""
    for sig, wait_s in ((signal.SIGTERM, grace), (signal.SIGKILL, 30.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _argv(spec: JobSpec, folder: Path) -> tuple[list[str], dict[str, str]]:
    """The child's command line and the extra environment it needs."""
    if spec.kind == "command":
        if not spec.command:
            raise InvalidInput(f"job {spec.job_id} has no command")
        return ["/bin/sh", "-c", spec.command], {}
    if spec.function is None:
        raise InvalidInput(f"job {spec.job_id} has no function")
    plan = folder / "function.pkl"
    plan.write_bytes(spec.function)
    if spec.kind == "function":
        code = "from ledgerflow.workers.job_task import call_function as f; f()"
        return [sys.executable, "-c", code, str(plan)], {}
    from ledgerflow.workers.runtime import cluster_address

    address = cluster_address()
    if address is None:
        raise InvalidInput(
            "a distributed job runs on Ray: submit it with ray_address local, auto or "
            "ray://host:port, not inline",
            field="ray_address",
        )
    code = "from ledgerflow.workers.distributed import main; main()"
    return [sys.executable, "-c", code, str(plan)], {"RAY_ADDRESS": address, "RAY_DEDUP_LOGS": "0"}


def call_function() -> None:
    """Entry of a function job's child process: load (function, kwargs) and call it."""
    import cloudpickle

    fn, kwargs = cloudpickle.loads(Path(sys.argv[1]).read_bytes())
    fn(**kwargs)


def run_job(spec: JobSpec) -> str:
    """Run one job to its end and record it; returns the job's final status."""
    from ledgerflow.services.bootstrap import bootstrap

    settings = load_settings(**spec.settings)
    backend = bootstrap(settings)
    host = socket.gethostname()
    actor = f"worker:{host}"
    try:
        jobs = backend.jobs
        job = jobs.get(spec.job_id)
        if job.done:  # cancelled while it waited for resources
            return job.status
        folder = job_dir(settings, spec.job_id)
        log_path = folder / "output.log"
        try:
            jobs.started(spec.job_id, host=host, log_path=str(log_path), actor=actor)
        except Conflict:
            return jobs.get(spec.job_id).status
        try:
            argv, extra = _argv(spec, folder)
            cwd = Path(spec.cwd) if spec.cwd and Path(spec.cwd).is_dir() else folder
            code, was_cancelled = supervise(
                argv, cwd=cwd, env=child_env(spec, extra), log_path=log_path,
                cancelled=lambda: jobs.queries.get(spec.job_id).status == "CANCELLED",
            )  # fmt: skip
            text = read_tail(log_path)
            error = None if code == 0 or was_cancelled else failure_reason(code, text)
        except StoppedAtExit:  # the exiting process records why (WorkerJobs._at_exit)
            with contextlib.suppress(Exception):  # the backend may be closing too
                _keep_log(backend, spec, log_path, actor)
            return jobs.get(spec.job_id).status
        except Exception as e:
            text, error = read_tail(log_path), f"{type(e).__name__}: {e}"
        _keep_log(backend, spec, log_path, actor)
        # The run ends before its job does, so whoever sees the job done sees its run
        # ended too; a cancel that won the race makes the run KILLED after all.
        seen = "FINISHED" if error is None else "FAILED"
        if jobs.get(spec.job_id).status != "CANCELLED":
            backend.tracking.finish_run(spec.run_id, seen, actor=actor)
        final = jobs.ended(spec.job_id, error, text, actor=actor)
        if RUN_STATUS[final.status] != seen:
            backend.tracking.finish_run(spec.run_id, RUN_STATUS[final.status], actor=actor)
        return final.status
    finally:
        backend.close()


def _keep_log(backend: Any, spec: JobSpec, log_path: Path, actor: str) -> None:
    """The whole output as the run's artifact `job/output.log`, readable from anywhere."""
    if log_path.exists():
        backend.tracking.log_artifact_files(
            spec.run_id, [(log_path, "job/output.log")], actor=actor
        )


def wait_until(check: Callable[[], bool], timeout: float, poll: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)
    return True
