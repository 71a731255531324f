"""`ledgerflow runs …`: list, search and inspect runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ledgerflow.cli import output
from ledgerflow.cli.context import AsOfOption, state
from ledgerflow.cli.output import JsonFlag

if TYPE_CHECKING:
    from ledgerflow.client import Client
    from ledgerflow.entities import Run

app = typer.Typer(help="List, search and inspect runs.", no_args_is_help=True)

MAX_RESULTS = 50_000

MaxOption = Annotated[
    int, typer.Option("--max", min=1, max=MAX_RESULTS, help="At most this many runs.")
]


@app.command("list")
def list_runs(
    ctx: typer.Context,
    experiment: Annotated[
        list[str] | None,
        typer.Option(
            "--experiment",
            "-e",
            help="An experiment name or id; repeat for several (default: every active experiment).",
        ),
    ] = None,
    max_results: MaxOption = 100,
    as_json: JsonFlag = False,
) -> None:
    """List active runs, most recently started first."""
    st = state(ctx)
    backend = st.backend()
    if experiment:
        runs = list(st.client().search_runs(experiment, max_results=max_results))
    else:
        ids = [e.experiment_id for e in backend.queries.search_experiments(max_results=100_000)]
        runs = backend.queries.search_runs(ids, max_results=max_results) if ids else []
    if as_json:
        output.print_json([r.to_dictionary() for r in runs])
        return
    runs_table(runs, _experiment_names(st.client(), runs))


@app.command("search")
def search_runs(
    ctx: typer.Context,
    experiment: Annotated[
        list[str],
        typer.Option(
            "--experiment", "-e", help="An experiment name or id to search; repeat for several."
        ),
    ],
    filter_string: Annotated[
        str,
        typer.Option(
            "--filter",
            "-f",
            help="Which runs, e.g. \"metrics.acc > 0.9 and params.lr = '0.01' and "
            "tags.team = 'cv'\".",
        ),
    ] = "",
    order_by: Annotated[
        list[str] | None,
        typer.Option("--order-by", "-o", help='e.g. "metrics.acc DESC"; repeat for tie-breakers.'),
    ] = None,
    max_results: MaxOption = 100,
    page_token: Annotated[
        str | None,
        typer.Option(
            "--page-token", help="Continue a search from the token a previous page printed."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Search runs with a filter, in the given order, one page at a time."""
    st = state(ctx)
    st.backend()
    page = st.client().search_runs(
        experiment, filter_string, max_results=max_results, order_by=order_by, page_token=page_token
    )
    if as_json:
        output.print_json(
            {"runs": [r.to_dictionary() for r in page], "next_page_token": page.token}
        )
        return
    runs_table(page, _experiment_names(st.client(), page))
    if page.token:
        output.line(f"next page: --page-token {page.token}")


@app.command("show")
def show_run(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    as_of: AsOfOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Show one run: its info, params, latest metrics, tags and artifacts (now, or as they
    were at --as-of)."""
    backend = state(ctx).reader(as_of)
    run = backend.queries.get_run(run_id)
    artifacts = sorted(backend.queries.artifact_entries(run_id).items())
    if as_json:
        doc: dict[str, Any] = run.to_dictionary()
        doc["artifacts"] = [
            {"path": p, "size": size, "sha256": sha} for p, (size, sha) in artifacts
        ]
        output.print_json(doc)
        return
    i = run.info
    output.table(
        ["field", "value"],
        [
            ("run id", i.run_id),
            ("name", i.run_name),
            ("experiment id", i.experiment_id),
            ("status", i.status),
            ("stage", i.lifecycle_stage),
            ("user", i.user_id),
            ("started", output.format_time(i.start_time)),
            ("ended", output.format_time(i.end_time)),
            ("duration", output.format_duration(i.start_time, i.end_time)),
            ("artifact uri", i.artifact_uri),
        ],
        no_wrap=["field"],
    )
    output.key_values(run.data.params, ("param", "value"))
    output.key_values(run.data.metrics, ("metric", "latest value"))
    output.key_values(run.data.tags, ("tag", "value"))
    output.key_values({p: size for p, (size, _) in artifacts}, ("artifact", "size (bytes)"))


def _experiment_names(client: Client, runs: Sequence[Run]) -> dict[str, str]:
    """Experiment names by id for the runs shown: people know experiments by name."""
    ids = {r.info.experiment_id for r in runs}
    return {i: client.get_experiment(i).name for i in sorted(ids)}


def runs_table(runs: Sequence[Run], experiment_names: Mapping[str, str] | None = None) -> None:
    if not runs:
        output.note("no runs")
        return
    output.table(
        ["run id", "name", "experiment", "status", "started", "duration", "metrics", "params"],
        [
            (
                r.info.run_id,
                r.info.run_name,
                (experiment_names or {}).get(r.info.experiment_id, r.info.experiment_id),
                r.info.status,
                output.format_time(r.info.start_time),
                output.format_duration(r.info.start_time, r.info.end_time),
                output.inline(r.data.metrics),
                output.inline(r.data.params),
            )
            for r in runs
        ],
        no_wrap=["run id", "experiment"],
    )
