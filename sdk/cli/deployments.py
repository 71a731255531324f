"""`ledgerflow deployments …`: A/B tests of model versions, their traffic, canary plans,
guardrails, promotion and rollback, and the history that explains each change."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ledgerflow.cli import deployment_analysis, output
from ledgerflow.cli.context import state
from ledgerflow.cli.deployment_args import (
    parse_canary,
    parse_guardrail,
    parse_variant,
    parse_weights,
    pinned_version,
    split_assignment,
)
from ledgerflow.cli.deployment_text import change_text, plan_text, print_deployment, show_state
from ledgerflow.cli.output import JsonFlag

if TYPE_CHECKING:
    from ledgerflow.client import Client

app = typer.Typer(
    help="Deployments: model versions served as an A/B test, with sticky routing, shadows, "
    "canary plans and guardrails that roll back on a breach.",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(help="The deployment's name.")]
Variants = Annotated[
    list[str] | None,
    typer.Option(
        "--variant", "-v", help="NAME=models:/MODEL/VERSION[:WEIGHT] (or @ALIAS); repeat."
    ),
]
Shadows = Annotated[
    list[str] | None,
    typer.Option("--shadow", help="NAME=models:/MODEL/VERSION: gets a copy of the traffic."),
]
Bundles = Annotated[
    list[str] | None,
    typer.Option("--bundle", help="VARIANT=BUNDLE_ID: serve that variant from a built bundle."),
]
Guardrails = Annotated[
    list[str] | None,
    typer.Option(
        "--guardrail",
        "-g",
        help="METRIC<=LIMIT or METRIC>=LIMIT; LIMITx is relative to the baseline "
        "(latency_p99_ms<=1.5x). Metrics: error_rate, latency_p99_ms, or a feedback metric.",
    ),
]
Canary = Annotated[
    str | None,
    typer.Option("--canary", help="CANDIDATE:PERCENT,PERCENT,... e.g. b:10,50,100"),
]
StepRequests = Annotated[
    int, typer.Option("--step-min-requests", min=0, help="Requests each canary step needs.")
]
StepSeconds = Annotated[
    float, typer.Option("--step-min-seconds", min=0, help="Seconds each canary step lasts.")
]
Reason = Annotated[str, typer.Option("--reason", "-r", help="Why; kept in the history.")]


def _variants(
    client: Client, items: list[str], option: str, *, shadow: bool, bundles: dict[str, str]
) -> list[dict[str, Any]]:
    out = []
    for item in items:
        name, uri, weight = parse_variant(item, option)
        pinned = pinned_version(uri)
        if pinned is None:
            mv = client.resolve_model_version(uri)
            pinned = (mv.name, int(mv.version))
        spec: dict[str, Any] = {"name": name, "model": pinned[0], "version": pinned[1]}
        spec["shadow"] = shadow
        if weight is not None:
            spec["weight"] = weight
        if name in bundles:
            spec["bundle_id"] = bundles.pop(name)
        out.append(spec)
    return out


def _bundle_map(items: list[str] | None) -> dict[str, str]:
    return dict(split_assignment(i, "--bundle", "VARIANT=BUNDLE_ID") for i in items or [])


@app.command("create")
def create(
    ctx: typer.Context,
    name: Name,
    variants: Variants = None,
    shadows: Shadows = None,
    bundles: Bundles = None,
    baseline: Annotated[
        str | None, typer.Option("--baseline", help="Default: the first --variant.")
    ] = None,
    description: Annotated[
        str, typer.Option("--description", "-d", help="What the deployment is for.")
    ] = "",
    key_header: Annotated[
        str, typer.Option("--key-header", help="Request header with the sticky key (user id).")
    ] = "X-Ledgerflow-Key",
    key_field: Annotated[
        str | None, typer.Option("--key-field", help="Or a top-level JSON field holding it.")
    ] = None,
    canary: Canary = None,
    step_min_requests: StepRequests = 0,
    step_min_seconds: StepSeconds = 0.0,
    guardrails: Guardrails = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a deployment: e.g. --variant a=models:/iris/1:90 --variant b=models:/iris/2:10."""
    if not variants:
        raise typer.BadParameter("give at least one variant", param_hint="'--variant'")
    client = state(ctx).client()
    by_name = _bundle_map(bundles)
    specs = _variants(client, variants, "--variant", shadow=False, bundles=by_name)
    specs += _variants(client, shadows or [], "--shadow", shadow=True, bundles=by_name)
    if by_name:
        raise typer.BadParameter(f"no variant named {sorted(by_name)}", param_hint="'--bundle'")
    arms = [s for s in specs if not s["shadow"]]
    weighed = any("weight" in s for s in arms)
    for spec in arms:  # an even split unless weights are given; then unweighted ones get 0
        spec.setdefault("weight", 0.0 if weighed else 100.0 / len(arms))
    plan = None if canary is None else parse_canary(canary, step_min_requests, step_min_seconds)
    dep = client.create_deployment(
        name, specs, baseline, description=description, key_header=key_header,
        key_field=key_field, guardrails=[parse_guardrail(g) for g in guardrails or []], plan=plan,
    )  # fmt: skip
    print_deployment(dep, as_json)


@app.command("list")
def list_deployments(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List deployments with their split."""
    deps = state(ctx).client().list_deployments()
    if as_json:
        output.print_json([d.to_dict() for d in deps])
        return
    if not deps:
        output.note("no deployments; create one with: ledgerflow deployments create NAME "
                    "--variant a=models:/MODEL/1")  # fmt: skip
        return
    output.table(
        ["name", "status", "baseline", "split", "canary", "last action"],
        [
            (
                d.name,
                d.status,
                d.baseline,
                " ".join(f"{k}={100 * s:.0f}%" for k, s in d.shares().items()),
                plan_text(d),
                d.last_action,
            )
            for d in deps
        ],
        no_wrap=["name"],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    name: Name,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="History entries.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """A deployment's state, variants and weights, and its latest history (why it changed)."""
    client = state(ctx).client()
    dep = client.get_deployment(name)
    history = client.get_deployment_history(name, limit)
    if as_json:
        output.print_json({"deployment": dep.to_dict(), "history": history})
        return
    show_state(dep)
    output.table(
        ["#", "time", "event", "actor", "details"],
        [
            (
                c.seq,
                output.format_time(c.time),
                c.type.removeprefix("deployment."),
                c.actor,
                change_text(c),
            )
            for c in history
        ],
        title="history",
        no_wrap=["#"],
    )


@app.command("traffic")
def traffic(
    ctx: typer.Context,
    name: Name,
    weights: Annotated[list[str], typer.Argument(help="NAME=WEIGHT for each variant served.")],
    reason: Reason = "",
    as_json: JsonFlag = False,
) -> None:
    """Set the whole split (variants not named get 0); ends a running canary plan."""
    split = parse_weights(weights, "WEIGHTS")
    print_deployment(state(ctx).client().set_deployment_traffic(name, split, reason), as_json)


@app.command("plan")
def plan(
    ctx: typer.Context,
    name: Name,
    canary: Canary = None,
    step_min_requests: StepRequests = 0,
    step_min_seconds: StepSeconds = 0.0,
    clear: Annotated[bool, typer.Option("--clear", help="Stop the running plan.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Start a canary plan at its first step (--canary b:10,50,100), or stop it (--clear)."""
    if (canary is None) == (not clear):
        raise typer.BadParameter("give --canary or --clear", param_hint="'--canary'")
    new = None if clear else parse_canary(canary or "", step_min_requests, step_min_seconds)
    print_deployment(state(ctx).client().set_deployment_plan(name, new), as_json)


@app.command("guardrails")
def guardrails(
    ctx: typer.Context, name: Name, guardrails: Guardrails = None, as_json: JsonFlag = False
) -> None:
    """Replace the guardrails (none given: remove them all)."""
    checked = [parse_guardrail(g) for g in guardrails or []]
    print_deployment(state(ctx).client().set_deployment_guardrails(name, checked), as_json)


@app.command("add-variant")
def add_variant(
    ctx: typer.Context,
    name: Name,
    variant: Annotated[str, typer.Argument(help="NAME=models:/MODEL/VERSION[:WEIGHT] (or @ALIAS)")],
    shadow: Annotated[bool, typer.Option("--shadow", help="A shadow: gets a copy.")] = False,
    bundle: Annotated[str | None, typer.Option("--bundle", help="Serve a built bundle.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Add a variant (weight 0 unless given: set traffic or a canary plan to use it)."""
    client = state(ctx).client()
    [spec] = _variants(client, [variant], "VARIANT", shadow=shadow, bundles={})
    if bundle is not None:
        spec["bundle_id"] = bundle
    print_deployment(client.add_deployment_variant(name, spec), as_json)


@app.command("remove-variant")
def remove_variant(
    ctx: typer.Context,
    name: Name,
    variant: Annotated[str, typer.Argument(help="The variant's name.")],
    reason: Reason = "",
    as_json: JsonFlag = False,
) -> None:
    """Remove a variant (not the baseline, not a running plan's candidate)."""
    print_deployment(state(ctx).client().remove_deployment_variant(name, variant, reason), as_json)


@app.command("pause")
def pause(ctx: typer.Context, name: Name, reason: Reason = "", as_json: JsonFlag = False) -> None:
    """Stop canary steps and automatic rollback; traffic stays as it is."""
    print_deployment(state(ctx).client().pause_deployment(name, reason), as_json)


@app.command("resume")
def resume(ctx: typer.Context, name: Name, as_json: JsonFlag = False) -> None:
    """Resume canary steps and guardrails."""
    print_deployment(state(ctx).client().resume_deployment(name), as_json)


@app.command("rollback")
def rollback(
    ctx: typer.Context, name: Name, reason: Reason = "", as_json: JsonFlag = False
) -> None:
    """Send all traffic back to the baseline; a running plan stops."""
    print_deployment(state(ctx).client().rollback_deployment(name, reason), as_json)


@app.command("promote")
def promote(
    ctx: typer.Context,
    name: Name,
    variant: Annotated[str, typer.Argument(help="The winning variant.")],
    alias: Annotated[
        str, typer.Option("--alias", help="Registry alias moved to its model version.")
    ] = "champion",
    no_alias: Annotated[bool, typer.Option("--no-alias", help="Move no alias.")] = False,
    reason: Reason = "",
    as_json: JsonFlag = False,
) -> None:
    """Send all traffic to VARIANT, make it the baseline, and move the alias to it."""
    dep = state(ctx).client().promote_deployment(name, variant, None if no_alias else alias, reason)
    print_deployment(dep, as_json)


@app.command("delete")
def delete(ctx: typer.Context, name: Name, as_json: JsonFlag = False) -> None:
    """Delete a deployment (its history stays on the log)."""
    state(ctx).client().delete_deployment(name)
    if as_json:
        output.print_json({"deleted": name})
    else:
        output.note(f"deleted deployment {name!r}")


app.command("analysis")(deployment_analysis.analysis)
