"""`ledgerflow tokens …` and `ledgerflow whoami`: API tokens for scripts, CI and services,
and who the CLI is taken for.

A token is shown once, by `tokens create`; only its SHA-256 is stored, so a lost token is
revoked and replaced, never recovered. Programs send it as `Authorization: Bearer
<token>`; the SDK and CLI do when LEDGERFLOW_TRACKING_TOKEN holds it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ledgerflow.cli import output
from ledgerflow.cli.context import state
from ledgerflow.cli.output import JsonFlag

if TYPE_CHECKING:
    from ledgerflow.events.auth_commands import Token

app = typer.Typer(
    help="API tokens: what scripts, CI and services sign in with (Bearer).",
    no_args_is_help=True,
)

UserOption = Annotated[
    str | None,
    typer.Option(
        "--user",
        "-u",
        help="Whose tokens (default: yours over a gateway; another user's needs an admin).",
    ),
]


def _expires(token: Token) -> str:
    return output.format_time(token.expires) if token.expires is not None else "never"


def _state(token: Token, now_ms: int) -> str:
    if token.revoked:
        return "revoked"
    if token.expires is not None and token.expires <= now_ms:
        return "expired"
    return "active"


@app.command("create")
def create(
    ctx: typer.Context,
    user: UserOption = None,
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires",
            "-e",
            help="Lifetime: seconds, or e.g. 30d, 12h, 90m, 2w (default: never expires).",
        ),
    ] = None,
    description: Annotated[
        str, typer.Option("--description", "-d", help="What it is for, e.g. 'CI nightly'.")
    ] = "",
    as_json: JsonFlag = False,
) -> None:
    """Create an API token and print it, this once: store it now.

    Use it with `export LEDGERFLOW_TRACKING_TOKEN=<token>` (MLflow clients: MLFLOW_TRACKING_TOKEN).
    """
    from ledgerflow._auth_methods import parse_duration

    lifetime = parse_duration(expires, "--expires")
    made = state(ctx).client().create_token(user, description, lifetime)
    if as_json:
        output.print_json(made.model_dump(mode="json"))
        return
    output.line(
        f"created token {made.id} for {made.user} (expires: {_expires(made)})", style="green"
    )
    output.line(f"export LEDGERFLOW_TRACKING_TOKEN={made.token}", style="bold")
    output.note(
        "this is the only time the token is shown: store it now (only its hash is kept). "
        f"Revoke it with: ledgerflow tokens revoke {made.id}"
    )


@app.command("list")
def list_tokens(ctx: typer.Context, user: UserOption = None, as_json: JsonFlag = False) -> None:
    """List API tokens (never the tokens themselves): yours, or a user's."""
    from ledgerflow.events.envelope import now_ms

    tokens = state(ctx).client().list_tokens(user)
    if as_json:
        output.print_json([t.model_dump(mode="json") for t in tokens])
        return
    if not tokens:
        output.note("no tokens; make one with: ledgerflow tokens create --expires 30d")
        return
    columns = ["id", "user", "description", "created", "expires", "state"]
    with_use = any(t.last_used is not None for t in tokens)  # shown once it is recorded
    if with_use:
        columns.append("last used")
    now = now_ms()
    rows: list[list[Any]] = []
    for t in tokens:
        row: list[Any] = [
            t.id,
            t.user,
            t.description,
            output.format_time(t.creation_time),
            _expires(t),
            _state(t, now),
        ]
        if with_use:
            row.append(output.format_time(t.last_used))
        rows.append(row)
    output.table(columns, rows, no_wrap=["id"])


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(help="The token's id (from `tokens list`).")],
    as_json: JsonFlag = False,
) -> None:
    """Revoke an API token: the next request with it is refused."""
    state(ctx).client().revoke_token(token_id)
    if as_json:
        output.print_json({"revoked": token_id})
    else:
        output.line(f"revoked token {token_id}", style="green")


def whoami(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Who the CLI is taken for: over a gateway, the identity its credentials
    (LEDGERFLOW_TRACKING_TOKEN, or _USERNAME and _PASSWORD) sign in as; on a data
    directory, the local user, who may do everything there."""
    st = state(ctx)
    me = st.client().whoami()
    if as_json:
        output.print_json(me.model_dump(mode="json"))
        return
    how = {"password": "a password", "token": f"token {me.token_id}", "oidc": "an OIDC token"}
    rows: list[tuple[str, Any]] = [
        ("user", me.user),
        ("admin", me.admin),
        ("groups", ", ".join(me.groups)),
        ("signed in with", how.get(me.method, "nothing (local user)")),
        ("server checks identities", me.auth),
        ("tracking URI", st.settings().tracking_uri),
    ]
    output.table(["field", "value"], rows, no_wrap=["field"])
