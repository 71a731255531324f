"""`ledgerflow jobs …`, `ledgerflow train` and `ledgerflow run`: training jobs on Ray.

`train` and `run` wait for the job by default, print where it ended, and exit 1
when it failed or was cancelled, so they compose in scripts and CI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ledgerflow.cli import output
from ledgerflow.cli.context import state
from ledgerflow.cli.output import JsonFlag

if TYPE_CHECKING:
    from ledgerflow.events.job_entities import Job as JobInfo
    from ledgerflow.jobs import Job

app = typer.Typer(
    help="Training jobs: list them, show one, read its output, cancel it.",
    no_args_is_help=True,
)

JobId = Annotated[str, typer.Argument(help="The job's id (`ledgerflow jobs list` shows them).")]
Params = Annotated[
    list[str] | None,
    typer.Option("--param", "-P", help="A parameter as NAME=VALUE; repeat for several."),
]
Experiment = Annotated[
    str | None,
    typer.Option("--experiment-name", help="The experiment of the job's run (created if missing)."),
]
Cpus = Annotated[float, typer.Option("--cpus", help="CPUs per process (per worker).")]
Gpus = Annotated[float, typer.Option("--gpus", help="GPUs per process (per worker).")]
Memory = Annotated[int | None, typer.Option("--memory", help="Memory per process, in bytes.")]
Detach = Annotated[
    bool, typer.Option("--detach", help="Return once submitted (needs a Ray cluster address).")
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        envvar="LEDGERFLOW_RAY_ADDRESS",
        show_default="local",
        help="local, auto, ray://host:port, or inline (a child process here, no Ray).",
    ),
]


def _summary(job: JobInfo) -> dict[str, Any]:
    return {
        "id": job.job_id,
        "name": job.name,
        "status": job.status,
        "kind": job.kind + (f" ({job.num_workers} workers)" if job.num_workers > 1 else ""),
        "entry point": job.entry_point,
        "params": output.inline(job.params),
        "resources": f"cpus={job.cpus:g} gpus={job.gpus:g}"
        + (f" memory={job.memory}" if job.memory else ""),
        "runtime": job.runtime,
        "experiment": job.experiment_id,
        "run": job.run_id,
        "project": output.inline(job.project),
        "host": job.host,
        "submitted": output.format_time(job.submitted_time),
        "duration": output.format_duration(job.start_time, job.end_time),
        "error": job.error or "",
    }


@app.command("list")
def list_jobs(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", help="Only jobs in this status, e.g. RUNNING.")
    ] = None,
    max_results: Annotated[int, typer.Option("--max-results", help="At most this many.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """List jobs, newest first."""
    from ledgerflow import jobs

    found = jobs.list_jobs(status, max_results, tracking_uri=state(ctx).tracking_uri)
    if as_json:
        output.print_json([j.to_dict() for j in found])
        return
    if not found:
        output.note("no jobs; start one with: ledgerflow train script.py -P lr=0.1")
        return
    output.table(
        ["id", "name", "status", "kind", "run", "submitted", "duration", "error"],
        [
            (
                j.job_id, j.name, j.status, j.kind, j.run_id,
                output.format_time(j.submitted_time),
                output.format_duration(j.start_time, j.end_time),
                output.shorten(j.error or "", 60),
            )
            for j in found
        ],
        no_wrap=["id"],
    )  # fmt: skip


@app.command("show")
def show(ctx: typer.Context, job_id: JobId, as_json: JsonFlag = False) -> None:
    """A job's details: status, parameters, resources, its run and how it ended."""
    from ledgerflow import jobs

    job = jobs.get(job_id, tracking_uri=state(ctx).tracking_uri)
    if as_json:
        output.print_json(job.to_dict())
        return
    output.table(["field", "value"], list(_summary(job).items()), no_wrap=["field"])
    if job.log_tail and job.status == "FAILED":
        output.line("last output:", style="bold")
        output.line(job.log_tail)


@app.command("logs")
def logs(ctx: typer.Context, job_id: JobId) -> None:
    """Print a job's output (stdout and stderr together) so far."""
    from ledgerflow import jobs

    typer.echo(jobs.logs(job_id, tracking_uri=state(ctx).tracking_uri), nl=False)


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    job_id: JobId,
    reason: Annotated[str, typer.Option("--reason", help="Recorded with the job.")] = "",
) -> None:
    """Cancel a job: its process stops within a second, wherever it runs; its run is KILLED."""
    from ledgerflow import jobs

    job = jobs.cancel(job_id, reason, tracking_uri=state(ctx).tracking_uri)
    output.line(f"job {job.job_id} {job.status}")


def _values(pairs: list[str] | None, *, typed: bool) -> dict[str, Any]:
    """-P NAME=VALUE pairs; for functions, values read as YAML scalars (0.1 is a float)."""
    import yaml

    from ledgerflow.workers.mlproject import parse_assignments

    raw = parse_assignments(pairs)
    return {k: yaml.safe_load(v) if typed and v else v for k, v in raw.items()} if typed else raw


def _finish(job: Job, detach: bool) -> None:
    if detach:
        output.line(f"job {job.job_id} submitted; run {job.run_id}")
        output.note(f"follow it with: ledgerflow jobs show {job.job_id}")
        return
    info = job.wait().info
    output.line(f"job {info.job_id} {info.status}; run {info.run_id}")
    if info.status != "FINISHED":
        if info.error:
            output.error(info.error)
        if info.log_tail:
            output.line(info.log_tail)
        raise typer.Exit(1)


def _check_detach(detach: bool, address: str) -> None:
    from ledgerflow.events.errors import InvalidInput

    if detach and address in ("local", "inline"):
        raise InvalidInput(
            f"--detach needs a Ray cluster (auto or ray://host:port): with {address}, the job "
            "would stop when this command exits",
            field="--detach",
        )


def train(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Argument(
            help="A script (train.py), a shell command in quotes, or package.module:function."
        ),
    ],
    params: Params = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers", "-n", help="Run a function on N Ray Train workers (TorchTrainer, gloo)."
        ),
    ] = 1,
    name: Annotated[str | None, typer.Option("--name", help="The job's and run's name.")] = None,
    experiment_name: Experiment = None,
    cpus: Cpus = 1.0,
    gpus: Gpus = 0.0,
    memory: Memory = None,
    ray_address: RayAddress = None,
    detach: Detach = False,
) -> None:
    """Run training code as a job on Ray, logging into a new run.

    A script gets its parameters as `--NAME VALUE`; a function gets them as keyword
    arguments (or, with --workers, as its config dict).
    """
    from ledgerflow import jobs

    st = state(ctx)
    address = ray_address or st.settings().ray_address
    _check_detach(detach, address)
    resolved = jobs.resolve(target)
    job = jobs.submit(
        resolved, params=_values(params, typed=callable(resolved)), name=name,
        experiment_name=experiment_name, cpus=cpus, gpus=gpus, memory=memory,
        num_workers=workers, ray_address=address, tracking_uri=st.tracking_uri,
    )  # fmt: skip
    _finish(job, detach)


def run(
    ctx: typer.Context,
    directory: Annotated[str, typer.Argument(help="The project directory (with an MLproject).")],
    entry_point: Annotated[
        str, typer.Option("--entry-point", "-e", help="The entry point to run.")
    ] = "main",
    params: Params = None,
    experiment_name: Experiment = None,
    on_ray: Annotated[
        bool, typer.Option("--on-ray", help="Run on Ray (LEDGERFLOW_RAY_ADDRESS) instead of here.")
    ] = False,
    cpus: Cpus = 1.0,
    gpus: Gpus = 0.0,
    memory: Memory = None,
    ray_address: RayAddress = None,
    detach: Detach = False,
) -> None:
    """Run an MLproject's entry point with typed, checked parameters, logging into a new run.

    The project's python_env / conda_env / docker_env is recorded, not built: the command
    runs in this Python environment.
    """
    from ledgerflow import jobs
    from ledgerflow.workers.mlproject import load_project

    st = state(ctx)
    address = (ray_address or st.settings().ray_address) if on_ray else "inline"
    _check_detach(detach, address)
    project = load_project(directory)
    for key, value in project.environment.items():
        output.note(f"{key}: {value} is recorded; the command runs in the current environment")
    job = jobs.run_project(
        directory, entry_point, _values(params, typed=False), on_ray=on_ray,
        ray_address=address, experiment_name=experiment_name, cpus=cpus, gpus=gpus,
        memory=memory, synchronous=False, tracking_uri=st.tracking_uri,
    )  # fmt: skip
    _finish(job, detach)
