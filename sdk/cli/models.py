"""`ledgerflow models …`: what the model registry says about a model."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ledgerflow.cli import output
from ledgerflow.cli.context import AsOfOption, state
from ledgerflow.cli.output import JsonFlag

app = typer.Typer(help="Inspect registered models.", no_args_is_help=True)


@app.command("show")
def show_model(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The registered model's name.")],
    as_of: AsOfOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Show a registered model: its versions with their stages and aliases, and its tags
    (now, or as the registry said at --as-of)."""
    registry = state(ctx).reader(as_of).registry.queries
    model = registry.get_registered_model(name)
    quoted = name.replace("'", "''")
    versions = sorted(
        registry.search_model_versions(f"name = '{quoted}'", max_results=100_000),
        key=lambda v: v.version,
    )
    if as_json:
        doc: dict[str, Any] = output.jsonable(model)
        doc["versions"] = output.jsonable(versions)
        output.print_json(doc)
        return
    output.table(
        ["field", "value"],
        [
            ("name", model.name),
            ("description", model.description),
            ("created", output.format_time(model.creation_timestamp)),
            ("updated", output.format_time(model.last_updated_timestamp)),
        ],
        no_wrap=["field"],
    )
    if versions:
        output.table(
            ["version", "stage", "status", "aliases", "run id", "created", "source", "tags"],
            [
                (
                    v.version,
                    v.current_stage,
                    v.status,
                    ", ".join(sorted(v.aliases)),
                    v.run_id,
                    output.format_time(v.creation_timestamp),
                    v.source,
                    output.inline(v.tags),
                )
                for v in versions
            ],
            no_wrap=["version", "run id"],
        )
    else:
        output.line("no versions", style="dim")
    output.key_values(model.aliases, ("alias", "version"))
    output.key_values(model.tags, ("tag", "value"))
