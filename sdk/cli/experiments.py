"""`ledgerflow experiments …`: list and create experiments."""

from __future__ import annotations

from typing import Annotated

import typer

from ledgerflow.cli import output
from ledgerflow.cli.context import state
from ledgerflow.cli.output import JsonFlag

app = typer.Typer(help="List and create experiments.", no_args_is_help=True)


def parse_tags(values: list[str] | None) -> dict[str, str]:
    """`key=value` strings as a mapping; the value may itself contain '='."""
    tags: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--tag")
        tags[key.strip()] = value
    return tags


@app.command("list")
def list_experiments(
    ctx: typer.Context,
    include_all: Annotated[
        bool, typer.Option("--all", help="Include deleted experiments.")
    ] = False,
    deleted: Annotated[bool, typer.Option("--deleted", help="Only deleted experiments.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """List experiments, newest first (active ones unless --all or --deleted)."""
    if include_all and deleted:
        raise typer.BadParameter("use either --all or --deleted, not both")
    view = "ALL" if include_all else "DELETED_ONLY" if deleted else "ACTIVE_ONLY"
    state(ctx).backend()
    experiments = state(ctx).client().search_experiments(view_type=view, max_results=100_000)
    if as_json:
        output.print_json(experiments)
        return
    output.table(
        ["id", "name", "stage", "created", "artifact location", "tags"],
        [
            (
                e.experiment_id,
                e.name,
                e.lifecycle_stage,
                output.format_time(e.creation_time),
                e.artifact_location,
                output.inline(e.tags),
            )
            for e in experiments
        ],
        no_wrap=["id"],
    )


@app.command("create")
def create_experiment(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A unique experiment name.")],
    artifact_location: Annotated[
        str | None,
        typer.Option(
            "--artifact-location",
            help="Where its runs store artifacts (default: in the data directory).",
        ),
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="A tag as KEY=VALUE; repeat for several.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an experiment and print its id."""
    tags = parse_tags(tag)
    experiment_id = state(ctx).client().create_experiment(name, artifact_location, tags)
    if as_json:
        output.print_json({"experiment_id": experiment_id, "name": name})
    else:
        output.line(experiment_id)
