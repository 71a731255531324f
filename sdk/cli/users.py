"""`ledgerflow users …` and `ledgerflow groups …`: who may sign in to a server started with
`--auth`, and the groups grants can name (docs/security.md).

They work on a data directory (the records take effect once a server runs there with
`--auth`) or against a gateway URL as the identity LEDGERFLOW_TRACKING_TOKEN (or
_USERNAME and _PASSWORD) gives, where admins manage users and groups. A password is
never a command-line argument (other users could read it in `ps`): it is read from
stdin (`--password-stdin`) or typed at a hidden prompt (`--password-prompt`).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ledgerflow.cli import output
from ledgerflow.cli.context import state
from ledgerflow.cli.output import JsonFlag

if TYPE_CHECKING:
    from ledgerflow.events.auth_commands import Group, User

app = typer.Typer(
    help="Users who sign in to a server started with --auth (passwords, API tokens, OIDC).",
    no_args_is_help=True,
)
groups_app = typer.Typer(
    help="Groups of users, for grants on many users at once.", no_args_is_help=True
)

UserName = Annotated[str, typer.Argument(help="The user's name.")]
GroupName = Annotated[str, typer.Argument(help="The group's name.")]
PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
]
PasswordPrompt = Annotated[
    bool,
    typer.Option("--password-prompt", help="Type the password at a hidden prompt (twice)."),
]


def read_password(from_stdin: bool, prompt: bool, *, required: bool) -> str | None:
    """The password from stdin or a hidden prompt; None when neither was asked for and
    none is required (a user who signs in only with tokens or OIDC)."""
    if from_stdin and prompt:
        raise typer.BadParameter("use either --password-stdin or --password-prompt, not both")
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise typer.BadParameter("stdin held no password", param_hint="'--password-stdin'")
        return password
    if prompt or required:
        value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        return value
    return None


def user_doc(user: User) -> dict[str, Any]:
    return user.model_dump(mode="json")


def _show_user(user: User) -> None:
    output.table(
        ["field", "value"],
        [
            ("name", user.name),
            ("admin", user.admin),
            ("password", "yes" if user.has_password else "no (tokens or OIDC only)"),
            ("groups", ", ".join(user.groups)),
            ("created", output.format_time(user.creation_time)),
        ],
        no_wrap=["field"],
    )


def _print_user(user: User, as_json: bool) -> None:
    if as_json:
        output.print_json(user_doc(user))
    else:
        _show_user(user)


# users ---------------------------------------------------------------------------------


@app.command("create")
def create(
    ctx: typer.Context,
    name: UserName,
    password_stdin: PasswordStdin = False,
    password_prompt: PasswordPrompt = False,
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an admin.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a user. Without --password-stdin or --password-prompt the user has no
    password and signs in only with API tokens (a service account) or OIDC."""
    password = read_password(password_stdin, password_prompt, required=False)
    user = state(ctx).client().create_user(name, password, admin=admin)
    _print_user(user, as_json)
    if not as_json and password is None:
        output.note(
            f"{name} has no password; give them a token: ledgerflow tokens create --user {name}"
        )


@app.command("list")
def list_users(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List users with their groups (admins only, over a gateway)."""
    users = state(ctx).client().list_users()
    if as_json:
        output.print_json([user_doc(u) for u in users])
        return
    if not users:
        output.note("no users; add one with: ledgerflow users create NAME --password-prompt")
        return
    output.table(
        ["name", "admin", "password", "groups", "created"],
        [
            (
                u.name,
                u.admin,
                "yes" if u.has_password else "no",
                ", ".join(u.groups),
                output.format_time(u.creation_time),
            )
            for u in users
        ],
        no_wrap=["name"],
    )


@app.command("show")
def show(ctx: typer.Context, name: UserName, as_json: JsonFlag = False) -> None:
    """Show one user (yourself, or anyone for an admin)."""
    _print_user(state(ctx).client().get_user(name), as_json)


@app.command("delete")
def delete(ctx: typer.Context, name: UserName, as_json: JsonFlag = False) -> None:
    """Delete a user: their tokens stop working, their grants and memberships go."""
    state(ctx).client().delete_user(name)
    if as_json:
        output.print_json({"deleted": name})
    else:
        output.line(f"deleted user {name}", style="green")


@app.command("set-admin")
def set_admin(
    ctx: typer.Context,
    name: UserName,
    admin: Annotated[
        bool, typer.Option("--admin/--no-admin", help="Make the user an admin, or not.")
    ] = True,
    as_json: JsonFlag = False,
) -> None:
    """Make a user an admin (or, with --no-admin, not)."""
    _print_user(state(ctx).client().set_admin(name, admin), as_json)


@app.command("set-password")
def set_password(
    ctx: typer.Context,
    name: UserName,
    password_stdin: PasswordStdin = False,
    remove: Annotated[
        bool,
        typer.Option("--remove", help="Remove the password: tokens or OIDC only from then on."),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Set a user's password, read from stdin (--password-stdin) or typed at a hidden
    prompt. Users may set their own; admins anyone's."""
    if remove and password_stdin:
        raise typer.BadParameter("use either --remove or --password-stdin, not both")
    password = None if remove else read_password(password_stdin, False, required=True)
    _print_user(state(ctx).client().set_password(name, password), as_json)


# groups --------------------------------------------------------------------------------


def group_doc(group: Group) -> dict[str, Any]:
    return group.model_dump(mode="json")


def _print_group(group: Group, as_json: bool) -> None:
    if as_json:
        output.print_json(group_doc(group))
        return
    output.table(
        ["field", "value"],
        [
            ("name", group.name),
            ("description", group.description),
            ("members", ", ".join(group.members)),
            ("created", output.format_time(group.creation_time)),
        ],
        no_wrap=["field"],
    )


@groups_app.command("create")
def create_group(
    ctx: typer.Context,
    name: GroupName,
    description: Annotated[str, typer.Option("--description", "-d", help="What it is for.")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Create a group (admins only, over a gateway)."""
    _print_group(state(ctx).client().create_group(name, description), as_json)


@groups_app.command("list")
def list_groups(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List groups with their members."""
    groups = state(ctx).client().list_groups()
    if as_json:
        output.print_json([group_doc(g) for g in groups])
        return
    if not groups:
        output.note("no groups; add one with: ledgerflow groups create NAME")
        return
    output.table(
        ["name", "members", "description", "created"],
        [
            (g.name, ", ".join(g.members), g.description, output.format_time(g.creation_time))
            for g in groups
        ],
        no_wrap=["name"],
    )


@groups_app.command("delete")
def delete_group(ctx: typer.Context, name: GroupName, as_json: JsonFlag = False) -> None:
    """Delete a group: its members leave it and its grants go."""
    state(ctx).client().delete_group(name)
    if as_json:
        output.print_json({"deleted": name})
    else:
        output.line(f"deleted group {name}", style="green")


@groups_app.command("add-member")
def add_member(
    ctx: typer.Context, group: GroupName, user: UserName, as_json: JsonFlag = False
) -> None:
    """Add a user to a group."""
    _print_group(state(ctx).client().add_group_member(group, user), as_json)


@groups_app.command("remove-member")
def remove_member(
    ctx: typer.Context, group: GroupName, user: UserName, as_json: JsonFlag = False
) -> None:
    """Remove a user from a group."""
    _print_group(state(ctx).client().remove_group_member(group, user), as_json)
