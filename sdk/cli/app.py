"""The root `ledgerflow` command: the global options and the command groups under it."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from ledgerflow.cli import (
    audit,
    bundles,
    crate,
    demo,
    deployer,
    deployments,
    events,
    experiments,
    gateway,
    jobs,
    metrics,
    models,
    output,
    permissions,
    projector,
    runs,
    serve,
    server,
    sync,
    tensorboard,
    tokens,
    traffic_stats,
    ui,
    users,
    verify,
    views,
    webhooks,
)
from ledgerflow.cli.context import State


class _Root(TyperGroup):
    """Turns any LedgerflowError raised below into `Error: …` on stderr and exit code 1."""

    def invoke(self, ctx: Any) -> Any:  # a click Context (typer may vendor click)
        from ledgerflow.events.errors import LedgerflowError

        try:
            return super().invoke(ctx)
        except LedgerflowError as e:
            output.error(e.message)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_Root,
    name="ledgerflow",
    help="Ledgerflow: event-sourced experiment tracking. Every change is an event on a log; "
    "runs, metrics and experiments are views folded from it.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_show_locals=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    ctx: typer.Context,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            envvar="LEDGERFLOW_TRACKING_URI",
            show_default="./ledgerflow-data",
            help="The data directory to work on, or a gateway's http(s):// URL.",
        ),
    ] = None,
) -> None:
    """Ledgerflow: event-sourced experiment tracking."""
    ctx.obj = State(tracking_uri)


app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(metrics.app, name="metrics")
app.add_typer(models.app, name="models")
app.add_typer(events.app, name="events")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(users.app, name="users")
app.add_typer(users.groups_app, name="groups")
app.add_typer(tokens.app, name="tokens")
app.add_typer(permissions.app, name="permissions")
app.command("whoami")(tokens.whoami)
app.add_typer(jobs.app, name="jobs")
app.command("train")(jobs.train)
app.command("run")(jobs.run)
app.add_typer(bundles.app, name="bundle")
app.add_typer(deployments.app, name="deployments")
app.command("replay")(views.replay)
app.command("verify")(verify.verify)
app.add_typer(views.views_app, name="views")
app.add_typer(views.dead_letters_app, name="dead-letters")
app.command("demo")(demo.demo)
app.command("projector")(projector.projector)
app.command("deployer")(deployer.deployer)
app.command("traffic-stats")(traffic_stats.traffic_stats)
app.command("gateway")(gateway.gateway)
app.command("sync")(sync.sync)
app.command("server")(server.server)
app.command("ui")(ui.ui)
app.command("tensorboard")(tensorboard.tensorboard)
app.command("serve")(serve.serve)
app.command("audit")(audit.audit)
app.command("crate-helper")(crate.crate_helper)


def main() -> None:
    """Entry point of the `ledgerflow` console script."""
    app()
