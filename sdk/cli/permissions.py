"""`ledgerflow permissions …`: who may read, edit or manage an experiment, a registered
model, a deployment or a webhook, once a server runs with `--auth` (docs/security.md).

A grant names a user (`alice`, or `user:alice`) or a group (`group:team-cv`) and one of
READ, EDIT, MANAGE or NO_PERMISSIONS; where nothing names the caller, the server's
default level applies (LEDGERFLOW_AUTH_DEFAULT). The creator of a resource has MANAGE.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ledgerflow.cli import output
from ledgerflow.cli.context import state
from ledgerflow.cli.output import JsonFlag

if TYPE_CHECKING:
    from ledgerflow.client import Client

app = typer.Typer(
    help="Grants on experiments, models, deployments and webhooks (READ, EDIT, MANAGE).",
    no_args_is_help=True,
)

KindArg = Annotated[
    str, typer.Argument(help="What the grant is on: experiment, model, deployment or webhook.")
]
NameArg = Annotated[
    str,
    typer.Argument(help="An experiment's name or id; a model's, deployment's or webhook's name."),
]
PrincipalArg = Annotated[
    str, typer.Argument(help="A user (alice, or user:alice) or a group (group:team-cv).")
]


def resource_key(client: Client, kind: str, name: str) -> str:
    """The key grants use: an experiment's id (given its id or name); other names as they
    are (a model may be granted on before it is registered)."""
    from ledgerflow._auth_methods import kind_of
    from ledgerflow.events.errors import NotFound

    if kind_of(kind) != "experiment":
        return name
    try:
        return client.get_experiment(name).experiment_id
    except NotFound:
        found = client.get_experiment_by_name(name)
    if found is None:
        raise NotFound(f"no experiment with id or name {name!r}", kind="experiment", key=name)
    return found.experiment_id


@app.command("set")
def set_permission(
    ctx: typer.Context,
    kind: KindArg,
    name: NameArg,
    principal: PrincipalArg,
    level: Annotated[str, typer.Argument(help="READ, EDIT, MANAGE or NO_PERMISSIONS.")],
    as_json: JsonFlag = False,
) -> None:
    """Grant a user or group a level on a resource (needs MANAGE on it, or an admin)."""
    client = state(ctx).client()
    granted = client.set_permission(kind, resource_key(client, kind, name), principal, level)
    if as_json:
        output.print_json(granted.model_dump(mode="json"))
        return
    output.line(
        f"{granted.principal} has {granted.level} on {granted.kind} {granted.key}", style="green"
    )


@app.command("list")
def list_permissions(
    ctx: typer.Context, kind: KindArg, name: NameArg, as_json: JsonFlag = False
) -> None:
    """The grants on one resource, the creator's MANAGE included."""
    client = state(ctx).client()
    key = resource_key(client, kind, name)
    grants = client.list_permissions(kind, key)
    if as_json:
        output.print_json([g.model_dump(mode="json") for g in grants])
        return
    if not grants:
        output.note(f"no grants on {kind} {key}: the server's default level applies to everyone")
        return
    output.table(
        ["principal", "level", "source"],
        [(g.principal, g.level, g.source) for g in grants],
        title=f"{kind} {key}",
        no_wrap=["principal"],
    )


@app.command("remove")
def remove_permission(
    ctx: typer.Context,
    kind: KindArg,
    name: NameArg,
    principal: PrincipalArg,
    as_json: JsonFlag = False,
) -> None:
    """Remove a user's or group's grant: the default level (or their groups') applies again."""
    from ledgerflow._auth_methods import principal_of

    client = state(ctx).client()
    key = resource_key(client, kind, name)
    client.remove_permission(kind, key, principal)
    if as_json:
        output.print_json({"removed": principal_of(principal), "kind": kind, "key": key})
    else:
        output.line(f"removed {principal_of(principal)}'s grant on {kind} {key}", style="green")
