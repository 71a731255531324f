"""What `ledgerflow demo` prints at the end: runs, jobs, versions, bundles, predictions,
and the A/B test.

Kept apart from the demo's steps (`main`) so each reads on its own; everything shown
is read back through `Client` except what the fresh process answered (the steps'
records are in `results`).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import ledgerflow as lf
from ledgerflow.demo.ab import BASELINE, CANDIDATE, STEPS, AbTest, p_text
from ledgerflow.demo.models import REGISTERED_MODEL
from ledgerflow.demo.traffic import CONVERSION_IF_RIGHT, CONVERSION_IF_WRONG, USERS

if TYPE_CHECKING:
    from ledgerflow.client import Client
    from ledgerflow.demo.results import Built, Served, TrainingJob
    from ledgerflow.events.settings import Settings

EXPERIMENT = "ledgerflow-demo-digits"
CHAMPION_URI = f"models:/{REGISTERED_MODEL}@champion"
SHOWN_PREDICTIONS = 12
UI_URL = "http://127.0.0.1:5000"  # where `ledgerflow ui` listens by default


def _where(settings: Settings) -> str:
    return settings.tracking_uri if settings.is_remote else str(settings.data_dir)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _table(title: str, columns: list[str]) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0))
    for col in columns:
        table.add_column(col, no_wrap=True, min_width=32 if col == "run id" else None)
    return table


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1024:.0f} KiB" if n < 1024 * 1024 else f"{n / (1024 * 1024):.1f} MiB"


def print_summary(
    client: Client,
    experiment_id: str,
    parent_id: str,
    jobs: list[TrainingJob],
    bundles: list[Built],
    served: Served,
    ab: AbTest | str,
    elapsed: float,
) -> None:
    from ledgerflow.cli.output import console as output_console
    from ledgerflow.events.settings import load_settings

    console = output_console()  # as wide in a log file as the tables need, not 80 columns
    experiment = client.get_experiment(experiment_id)
    parent = client.get_run(parent_id)
    candidates = [job.trained for job in jobs]
    by_run = {t.run_id: t for t in candidates}
    console.print(f"\n[bold]Ledgerflow demo[/] finished in {elapsed:.1f} s")
    console.print(f"experiment [cyan]{experiment.name}[/] (id {experiment.experiment_id})")

    runs = _table("runs", ["run", "run id", "status", "val acc", "test acc"])
    for run in [parent, *(client.get_run(t.run_id) for t in candidates)]:
        m = run.data.metrics
        name = run.info.run_name if run is parent else f"└ {run.info.run_name}"
        runs.add_row(
            name,
            run.info.run_id,
            run.info.status,
            _fmt(m.get("val_accuracy")),
            _fmt(m.get("test_accuracy", m.get("champion_test_accuracy"))),
        )
    console.print(runs)
    _print_jobs(console, jobs)
    for t in candidates:
        history = client.get_metric_history(t.run_id, "val_accuracy")
        console.print(
            f"[bold]{t.framework}[/]: trained in {t.train_seconds:.1f} s, "
            f"test_loss {t.test_loss:.3f}, test_accuracy {t.test_accuracy:.3f}\n"
            f"  val_accuracy per epoch ({len(history)} points): "
            f"{', '.join(f'{p.value:.3f}' for p in history)}\n"
            f"  model: {t.model_uri}",
            highlight=False,
        )

    versions = _table(
        f"registered model {REGISTERED_MODEL}", ["version", "framework", "aliases", "run id"]
    )
    for t in sorted(candidates, key=lambda c: c.version):
        mv = client.get_model_version(REGISTERED_MODEL, t.version)
        versions.add_row(
            str(mv.version), mv.tags.get("framework", ""), ", ".join(mv.aliases), mv.run_id or ""
        )
    console.print(versions)
    _print_bundles(console, bundles)
    champion = client.get_model_version_by_alias(REGISTERED_MODEL, "champion")
    files = client.get_model_version_download_uri(REGISTERED_MODEL, champion.version)
    console.print("the champion's files, an MLflow model directory:", highlight=False)
    console.print(f"  {files}", highlight=False, soft_wrap=True)

    loaded = by_run.get(served.run_id)  # the champion then; the A/B test may have moved it
    console.print(
        f"\n[bold]fresh-process predictions[/] of {CHAMPION_URI} "
        f"(version {loaded.version if loaded else '?'})\n"
        f"  a new Python process loaded run {served.run_id}'s model\n"
        f"  with ledgerflow.pyfunc (via {served.loader_module}) in {served.seconds:.1f} s:",
        highlight=False,
    )
    shown = range(min(SHOWN_PREDICTIONS, len(served.labels)))
    console.print("  label      " + " ".join(f"{served.labels[i]:>2}" for i in shown))
    console.print("  predicted  " + " ".join(f"{served.predictions[i]:>2}" for i in shown))
    logged = loaded.test_accuracy if loaded else None
    console.print(
        f"  accuracy on all {len(served.labels)} test images: {served.accuracy:.3f} "
        f"(the run logged test_accuracy {_fmt(logged)})",
        highlight=False,
    )

    if isinstance(ab, str):  # why there is none
        console.print(f"\n[bold]A/B test[/] {ab}", highlight=False, soft_wrap=True)
    else:
        print_ab_test(console, ab)

    settings = load_settings(tracking_uri=lf.get_tracking_uri())
    where = _where(settings)
    console.print(f"\ndata directory: [green]{where}[/]")
    console.print("\n[bold]next steps[/]")
    if where != _where(load_settings()):  # the commands below would look elsewhere
        console.print(f"  export LEDGERFLOW_TRACKING_URI={where}")
    exe = _ledgerflow_command()
    for cmd in (
        f"{exe} runs list --experiment {EXPERIMENT}",
        f"{exe} runs show {champion.run_id}",
        f"{exe} metrics history {champion.run_id} val_accuracy",
        f"{exe} events tail --type 'model.*'",
        f"{exe} jobs list",
        f"{exe} bundle list {REGISTERED_MODEL}",
        *([] if isinstance(ab, str) else [f"{exe} deployments show {ab.deployment}"]),
        f'{_python_command()} -c "import ledgerflow.pyfunc as p; '
        f"print(p.load_model('{CHAMPION_URI}').metadata.to_dict()['flavors'])\"",
    ):
        console.print(f"  {cmd}", markup=False, highlight=False, soft_wrap=True)
    _print_web_ui(console, exe, where, settings.is_remote, experiment.experiment_id)


def _print_web_ui(console: Any, exe: str, where: str, remote: bool, experiment_id: str) -> None:
    """How to look at what the demo made in the web UI: `ledgerflow ui` on its data
    directory (the server's own UI when the demo logged to one)."""
    page = f"/experiments/{experiment_id}/runs"
    console.print("\n[bold]look at it in the web UI[/]")
    if remote:
        console.print(
            f"  open {where.rstrip('/')}{page}", markup=False, highlight=False, soft_wrap=True
        )
        return
    console.print(
        f"  {exe} --tracking-uri {where} ui", markup=False, highlight=False, soft_wrap=True
    )
    console.print(f"  then open {UI_URL}{page}", markup=False, highlight=False, soft_wrap=True)


def _print_jobs(console: Any, jobs: list[TrainingJob]) -> None:
    table = _table(
        f"training jobs on Ray ({jobs[0].runtime})", ["job", "job id", "status", "run id"]
    )
    for job in jobs:
        table.add_row(job.name, job.job_id, job.status, job.run_id)
    console.print(table)
    for job in jobs:
        console.print(f"[bold]{job.name}[/] job log (last lines):", highlight=False)
        for line in job.log_tail:
            console.print(f"  {line}", markup=False, highlight=False)


def _print_bundles(console: Any, bundles: list[Built]) -> None:
    """One row per bundle; a failed one's reason follows the table, since it can be long."""
    table = _table(
        "bundles",
        ["version", "framework", "target", "status", "size", "runtime", "parity max diff"],
    )
    for b in bundles:
        built = b.built
        table.add_row(
            str(b.version),
            b.framework,
            b.target,
            b.status,
            _size(built.size_bytes if built else None),
            (built.runtime or "-") if built else "-",
            f"{built.max_abs_diff:.2e}" if built and built.max_abs_diff is not None else "-",
        )
    console.print(table)
    for b in bundles:
        if b.status != "built":
            console.print(
                f"  version {b.version} {b.target} failed: {b.reason or 'no reason recorded'}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
    count = sum(b.built is not None for b in bundles)
    if count:
        console.print(
            f"  {count} of {len(bundles)} built; files under models/{REGISTERED_MODEL}/"
            "<version>/bundles/ in the artifact store",
            highlight=False,
        )


def _ledgerflow_command() -> str:
    """How the user can run the CLI from here: `ledgerflow` if it is on the PATH, else the
    script next to this interpreter (e.g. `.venv/bin/ledgerflow` before activating)."""
    import shutil
    from pathlib import Path

    if shutil.which("ledgerflow"):
        return "ledgerflow"
    script = Path(sys.executable).parent / "ledgerflow"
    return _short(script) if script.exists() else "ledgerflow"


def _python_command() -> str:
    """This interpreter as the user can type it: `python` once the environment that has
    the `ledgerflow` command is active, else its path (e.g. `.venv/bin/python`)."""
    import shutil

    return "python" if shutil.which("ledgerflow") else _short(sys.executable)


def _short(path: os.PathLike[str] | str) -> str:
    """`path` relative to the working directory when that is below it, else absolute."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return rel if not rel.startswith("..") else str(path)


def print_ab_test(console: Any, ab: AbTest) -> None:
    """The A/B section of the demo's summary: the deployer's actions, the per-variant
    statistics with confidence intervals and p-values, and the verdict."""
    from rich import box
    from rich.table import Table

    arms = {a.variant: a for a in ab.arms}
    steps = " -> ".join(f"{s['weight']:g}%" for s in STEPS)
    sources = {a.served_as for a in ab.arms}
    served = (
        f"both from their {sources.pop()}s"
        if len(sources) == 1
        else ", ".join(f"{a.variant} from its {a.served_as}" for a in ab.arms)
    )
    console.print(
        f"\n[bold]A/B test[/] [cyan]{ab.deployment}[/]: {BASELINE} (baseline) vs {CANDIDATE}\n"
        f"  served in this process, {served}\n"
        f"  {ab.requests} simulated requests from {USERS} users, routed by user id (sticky), "
        f"in {ab.seconds:.1f} s\n"
        f"  a user converts with probability {CONVERSION_IF_RIGHT} when the digit is read "
        f"right, {CONVERSION_IF_WRONG} when not\n"
        f"  canary plan: {CANDIDATE} at {steps}, one step further each time it has served "
        "enough",
        highlight=False,
    )
    for line in ab.timeline or ["the deployer did not advance the canary"]:
        console.print(f"  {line}", markup=False, highlight=False)
    table = Table(
        title=f"{ab.deployment}: {ab.analysis['metric']} per variant",
        box=box.SIMPLE_HEAD, show_edge=False, padding=0,  # nine columns fit 100 characters
    )  # fmt: skip
    for col in ("variant", "version", "weight", "requests", "errors", "p50/p99 ms",
                "conversion, 95% CI", "p adj", "state"):  # fmt: skip
        table.add_column(col, no_wrap=True)
    for r in ab.analysis["variants"]:
        arm = arms.get(r["variant"])
        ci = r["value_ci"]
        conversion = "-" if r["value"] is None else f"{r['value']:.3f}"
        if ci is not None:
            conversion += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
        table.add_row(
            r["variant"],
            f"{arm.version} {arm.framework}" if arm else "-",
            f"{r['weight']:.0%}",
            str(r["count"]),
            "-" if r["error_rate"] is None else f"{r['error_rate']:.1%}",
            f"{_ms(r['latency_p50_ms'])}/{_ms(r['latency_p99_ms'])}",
            conversion,
            p_text(r["adjusted_p_value"]),
            r["state"].replace("_", " "),
        )
    console.print(table)
    if ab.verdict is not None:
        console.print(f"[bold]verdict[/]: {ab.verdict.text}", highlight=False)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
