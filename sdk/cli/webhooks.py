"""`ledgerflow webhooks …`: register HTTP endpoints for events, and run the dispatcher."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ledgerflow.cli import output
from ledgerflow.cli.context import state
from ledgerflow.cli.output import JsonFlag
from ledgerflow.webhooks import standard_secret

if TYPE_CHECKING:
    from ledgerflow.events.webhook_entities import Webhook, WebhookDelivery
    from ledgerflow.services.webhooks.queries import HookConfig

app = typer.Typer(
    help="Webhooks: POST matching events, signed and in log order, to HTTP endpoints.",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(help="The webhook's name.")]
Events = Annotated[
    list[str] | None,
    typer.Option(
        "--event",
        "-e",
        help="An event type glob to deliver, e.g. 'model.*' or 'run.finished'; repeat for several.",
    ),
]
Secret = Annotated[
    str | None,
    typer.Option("--secret", help="The signing secret (at least 16 characters)."),
]
Description = Annotated[str | None, typer.Option("--description", "-d", help="What it is for.")]


def _summary(hook: Webhook) -> dict[str, Any]:
    return {
        "name": hook.name,
        "id": hook.id,
        "url": hook.url,
        "events": ", ".join(hook.events),
        "active": hook.active,
        "description": hook.description,
        "created": output.format_time(hook.creation_time),
        "updated": output.format_time(hook.last_updated_time),
        "cursor": hook.cursor if hook.cursor is not None else "(log start)",
        "failed attempts": hook.failed_attempts,
        "next attempt": output.format_time(hook.next_attempt_time),
        "last error": hook.last_error or "",
    }


def _show(hook: Webhook) -> None:
    output.table(["field", "value"], list(_summary(hook).items()), no_wrap=["field"])


@app.command("create")
def create(
    ctx: typer.Context,
    name: Name,
    url: Annotated[str, typer.Argument(help="The http:// or https:// endpoint to POST to.")],
    events: Events = None,
    secret: Secret = None,
    description: Description = None,
    from_start: Annotated[
        bool,
        typer.Option("--from-start", help="Deliver every matching event already on the log, too."),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Register a webhook. The signing secret is shown this once: store it now.

    Deliveries start with events appended from now on (or, with --from-start, with the
    first on the log); `ledgerflow webhooks run` makes them.
    """
    hook = (
        state(ctx)
        .client()
        .create_webhook(name, url, events or [], secret, description, from_start=from_start)
    )
    if as_json:
        output.print_json(hook)
        return
    _show(hook)
    output.line(f"secret: {hook.secret}", style="bold")
    if hook.secret is not None:  # the same key, as Standard Webhooks libraries take it
        output.line(f"standard webhooks secret: {standard_secret(hook.secret)}")
    output.note("store the secret now: it is not shown again (update --secret replaces it)")


@app.command("list")
def list_webhooks(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List webhooks with where their deliveries stand (secrets are never shown)."""
    hooks = state(ctx).client().list_webhooks()
    if as_json:
        output.print_json(hooks)
        return
    if not hooks:
        output.note("no webhooks; add one with: ledgerflow webhooks create NAME URL -e 'model.*'")
        return
    output.table(
        ["name", "url", "events", "active", "cursor", "failed attempts", "last error"],
        [
            (
                h.name,
                h.url,
                ", ".join(h.events),
                h.active,
                h.cursor if h.cursor is not None else "(log start)",
                h.failed_attempts,
                output.shorten(h.last_error or "", 60),
            )
            for h in hooks
        ],
        no_wrap=["name"],
    )


@app.command("show")
def show(ctx: typer.Context, name: Name, as_json: JsonFlag = False) -> None:
    """Show one webhook and where its deliveries stand."""
    hook = state(ctx).client().get_webhook(name)
    if as_json:
        output.print_json(hook)
        return
    _show(hook)


@app.command("update")
def update(
    ctx: typer.Context,
    name: Name,
    url: Annotated[str | None, typer.Option("--url", help="A new endpoint.")] = None,
    events: Events = None,
    secret: Secret = None,
    description: Description = None,
    active: Annotated[
        bool | None,
        typer.Option(
            "--resume/--pause",
            help="Pause deliveries, or resume them (a resumed webhook gets everything it "
            "missed, in order).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a webhook; deliveries continue from the same place in the log."""
    hook = (
        state(ctx)
        .client()
        .update_webhook(
            name, url=url, events=events, secret=secret, description=description, active=active
        )
    )
    if as_json:
        output.print_json(hook)
        return
    _show(hook)


@app.command("delete")
def delete(ctx: typer.Context, name: Name, as_json: JsonFlag = False) -> None:
    """Delete a webhook; its pending deliveries are dropped."""
    state(ctx).client().delete_webhook(name)
    if as_json:
        output.print_json({"deleted": name})
        return
    output.line(f"deleted webhook {name}", style="green")


@app.command("deliveries")
def deliveries(
    ctx: typer.Context,
    name: Name,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="At most this many, newest first.")
    ] = 20,
    as_json: JsonFlag = False,
) -> None:
    """The latest delivery attempts of a webhook: status, error and duration."""
    attempts = state(ctx).client().list_webhook_deliveries(name, limit)
    if as_json:
        output.print_json(attempts)
        return
    if not attempts:
        output.note(f"no delivery attempts for {name} yet; is `ledgerflow webhooks run` running?")
        return
    output.table(
        ["time", "event type", "event id", "attempt", "result", "ms", "delivery id"],
        [
            (
                output.format_time(d.time),
                d.event_type,
                d.event_id,
                d.attempt,
                "ok" if d.ok else d.error,
                d.duration_ms,
                d.delivery_id,
            )
            for d in attempts
        ],
        no_wrap=["event id", "delivery id"],
    )


@app.command("run")
def run(
    ctx: typer.Context,
    backoff_base: Annotated[
        float,
        typer.Option("--backoff-base", min=0.001, help="Seconds before the first retry."),
    ] = 1.0,
    backoff_max: Annotated[
        float,
        typer.Option("--backoff-max", min=0.001, help="The longest wait between retries."),
    ] = 300.0,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds a receiver has to answer.")
    ] = 10.0,
    scan_interval: Annotated[
        float,
        typer.Option("--scan-interval", min=0.05, help="How often to look for webhook changes."),
    ] = 1.0,
    lease: Annotated[
        float,
        typer.Option(
            "--lease",
            min=0.1,
            help="Seconds a webhook stays with this dispatcher without renewal (renewed "
            "every scan): how soon another dispatcher takes over when this one dies.",
        ),
    ] = 5.0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Do not print each delivery attempt.")
    ] = False,
    host: Annotated[str, typer.Option("--host", help="Address of the metrics endpoint.")] = (
        "127.0.0.1"
    ),
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            max=65535,
            help="Serve /metrics (Prometheus: deliveries, failures, backlog age) "
            "and /health on this port.",
        ),
    ] = None,
) -> None:
    """Deliver webhooks in the foreground until Ctrl-C or SIGTERM.

    Each webhook gets its events in log order; a failed delivery is retried with
    exponential backoff (jittered, capped at --backoff-max) until the receiver takes it,
    and the events behind it wait. Progress is durable: stopped or killed, a restarted
    dispatcher resumes where each webhook left off. Several may run on one database: each
    webhook is delivered by one of them at a time, and another takes it over within
    --lease seconds when that one dies (at once when it stops).
    """
    from ledgerflow.services.metrics import exposition
    from ledgerflow.services.server import delivery_filter
    from ledgerflow.services.webhooks.backoff import Backoff
    from ledgerflow.services.webhooks.dispatcher import WebhookDispatcher

    backoff = Backoff(backoff_base, backoff_max)
    backend = state(ctx).embedded()
    backend.refresh()
    dispatcher = WebhookDispatcher(
        backend.log,
        backend.projector.engine,
        secrets=lambda: backend.secret_box,
        reader=backend.queries.engine,
        backoff=backoff,
        timeout_s=timeout,
        scan_interval_s=scan_interval,
        lease_s=max(lease, 2 * scan_interval),
        refresh=backend.refresh,
        on_attempt=None if quiet else _print_attempt,
        may_deliver=delivery_filter(backend),
    )
    signal.signal(signal.SIGTERM, lambda *_: dispatcher.stop())
    server = None
    if metrics_port is not None:
        server = exposition.serve(host, metrics_port, dispatcher.metrics.registry, name="webhooks")
        output.note(f"metrics on {exposition.url(server, host)}")
    output.note(
        f"delivering webhooks from {state(ctx).settings().tracking_uri}; Ctrl-C or SIGTERM stops"
    )
    try:
        dispatcher.run()
    except KeyboardInterrupt:
        dispatcher.stop()
    finally:
        if server is not None:
            server.shutdown()
    output.note("webhook dispatcher stopped")


def _print_attempt(hook: HookConfig, d: WebhookDelivery) -> None:
    from rich.text import Text

    text = Text(f"{output.format_time_ms(d.time)}  {hook.name}  {d.event_type}  {d.event_id}  ")
    if d.ok:
        text.append(f"{d.status_code} in {d.duration_ms} ms", style="green")
    else:
        text.append(f"attempt {d.attempt} failed: {d.error}", style="yellow")
    output.err_console().print(text, soft_wrap=True)
