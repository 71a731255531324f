"""`ledgerflow serve`: serve one model over REST (MLflow scoring, OIP v2) and optionally gRPC."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ledgerflow.cli import output
from ledgerflow.cli.context import state
from ledgerflow.cli.gateway import SslCertfileOption, SslKeyfileOption

if TYPE_CHECKING:
    from ledgerflow.services.serving.auth import ServingAuth


def serve(
    ctx: typer.Context,
    model_uri: Annotated[
        str | None,
        typer.Option(
            "--model-uri",
            "-m",
            help="models:/name/1, models:/name@alias, runs:/RUN_ID/path, a model folder, "
            "bundle:<bundle id> or a bundle folder.",
        ),
    ] = None,
    deployment: Annotated[
        str | None,
        typer.Option(
            "--deployment",
            "-d",
            help="Serve a deployment's variants instead (a replica): requests to "
            "/deployments/NAME/invocations are routed by its A/B split.",
        ),
    ] = None,
    port: Annotated[
        int, typer.Option("--port", "-p", min=0, max=65535, help="The REST port.")
    ] = 5000,
    host: Annotated[str, typer.Option("--host", help="The interface to listen on.")] = "127.0.0.1",
    grpc_port: Annotated[
        int | None,
        typer.Option("--grpc-port", min=1, max=65535, help="Also serve OIP gRPC on this port."),
    ] = None,
    max_batch_size: Annotated[
        int,
        typer.Option(
            "--max-batch-size",
            min=1,
            help="Rows per batched predict; concurrent requests are joined up to it (1: off).",
        ),
    ] = 1,
    max_wait_ms: Annotated[
        float,
        typer.Option(
            "--max-wait-ms",
            min=0.0,
            help="How long a batch waits for more requests after its first (0: it takes what "
            "queued while the previous predict ran, adding no latency).",
        ),
    ] = 0.0,
    name: Annotated[
        str | None,
        typer.Option("--name", help="The served model's name (default: its registered name)."),
    ] = None,
    auth: Annotated[
        bool,
        typer.Option(
            "--auth",
            help="Inference needs an identity (Authorization: Bearer/Basic, as the gateway's) "
            "and READ on the model or deployment. Feedback needs EDIT whenever "
            "LEDGERFLOW_AUTH is on. Checked against the auth views: the data directory's, "
            "or LEDGERFLOW_VIEWS_DB.",
        ),
    ] = False,
    ssl_keyfile: SslKeyfileOption = None,
    ssl_certfile: SslCertfileOption = None,
) -> None:
    """Serve a model: POST /invocations as `mlflow models serve` does, the Open Inference
    Protocol v2 under /v2, Prometheus metrics at /metrics. Or, with --deployment, be a
    replica of an A/B deployment."""
    from ledgerflow.services.serving.server import ServeSettings, run_server
    from ledgerflow.services.tls import Tls
    from ledgerflow.services.watchdog import ServiceFailed

    if (model_uri is None) == (deployment is None):
        raise typer.BadParameter(
            "give a model with --model-uri/-m or a deployment with --deployment/-d (one of them)",
            param_hint="--model-uri",
        )

    tracking_uri = state(ctx).tracking_uri
    if tracking_uri is not None:
        import ledgerflow

        ledgerflow.set_tracking_uri(tracking_uri)
    settings = ServeSettings(
        model_uri=model_uri or "",
        deployment=deployment,
        port=port,
        host=host,
        grpc_port=grpc_port,
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        name=name,
        tls=Tls.of(ssl_keyfile, ssl_certfile),
    )
    # Models, runs and bundles come from the backend these settings name, under their
    # pickle policy.
    try:
        run_server(
            settings,
            announce=lambda line: output.note(line),
            log_settings=state(ctx).settings() if deployment is not None else None,
            source=state(ctx).client(),
            allow_pickle=state(ctx).settings().allow_pickle,
            auth=_serving_auth(ctx, inference=auth, feedback=deployment is not None),
            # a registered model's TF Serving labels follow its aliases on the backend's log
            events=state(ctx).backend(catch_up=False).log
            if model_uri is not None and model_uri.startswith(("models:/", "bundle:"))
            else None,
        )
    except ServiceFailed as e:  # a supervisor restarts the process on a non-zero exit
        output.error(str(e))
        raise typer.Exit(1) from None


def _serving_auth(ctx: typer.Context, *, inference: bool, feedback: bool) -> ServingAuth | None:
    """Who may call the server: with --auth, inference needs an identity; a replica's
    feedback needs one whenever LEDGERFLOW_AUTH is on. None: anyone may."""
    settings = state(ctx).settings()
    if not inference and not (feedback and settings.auth):
        return None
    from ledgerflow.services.serving.auth import ServingAuth

    if settings.is_remote:  # no data directory here: the gateway's views database
        return ServingAuth.over_views(settings, inference=inference)
    return ServingAuth.of(state(ctx).embedded(), inference=inference)
