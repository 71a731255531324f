"""Identity and permission commands: read what the views say, decide (`decide`), append
the events, wait until projected, answer with the record.

Who may run each command is checked before it gets here (the gateway's `Authorizer`);
this service makes the facts. Passwords are hashed here, so only the hash reaches the
log; a token is made here and shown once, in the answer to creating it.
"""

from __future__ import annotations

from typing import Any

from ledgerflow.events import auth_commands as ac
from ledgerflow.events.envelope import now_ms, uuid7
from ledgerflow.events.errors import InvalidInput, NotFound
from ledgerflow.events.permissions import user_of
from ledgerflow.services.auth import credentials, decide
from ledgerflow.services.auth.queries import AuthQueries
from ledgerflow.services.commands import Committer, Handlers


def _not_found(kind: str, key: str) -> NotFound:
    return NotFound(f"{kind} {key!r} does not exist", kind=kind, key=key)


class AuthService:
    handlers = Handlers["AuthService"]()

    def __init__(self, committer: Committer, queries: AuthQueries) -> None:
        self._committer = committer
        self.queries = queries

    def execute(self, command: Any, *, actor: str) -> Any:
        return self.handlers.run(self, command, actor)

    # users ---------------------------------------------------------------------------

    def _hash(self, password: str | None) -> str | None:
        return None if password is None else credentials.hash_password(
            decide.check_password(password)
        )  # fmt: skip

    @handlers.on(ac.CreateUser)
    def _create_user(self, command: ac.CreateUser, actor: str) -> ac.User:
        decide.check_name(command.name, "user", "name")
        exists = self.queries.user(command.name) is not None
        hashed = self._hash(command.password)
        self._committer.commit(
            [decide.create_user(command, exists=exists, password_hash=hashed)], actor
        )
        return self._user(command.name)

    @handlers.on(ac.SetPassword)
    def _set_password(self, command: ac.SetPassword, actor: str) -> ac.User:
        user = self.queries.user(command.name)
        hashed = self._hash(command.password) if user is not None else None
        self._committer.commit([decide.set_password(command, user, password_hash=hashed)], actor)
        return self._user(command.name)

    @handlers.on(ac.SetAdmin)
    def _set_admin(self, command: ac.SetAdmin, actor: str) -> ac.User:
        self._committer.commit(decide.set_admin(command, self.queries.user(command.name)), actor)
        return self._user(command.name)

    @handlers.on(ac.DeleteUser)
    def _delete_user(self, command: ac.DeleteUser, actor: str) -> None:
        self._committer.commit(
            [decide.delete_user(command, self.queries.user(command.name))], actor
        )

    def _user(self, name: str) -> ac.User:
        user = self.queries.user(name)
        if user is None:
            raise _not_found("user", name)
        return user

    # groups --------------------------------------------------------------------------

    @handlers.on(ac.CreateGroup)
    def _create_group(self, command: ac.CreateGroup, actor: str) -> ac.Group:
        exists = self.queries.group(command.group) is not None
        self._committer.commit([decide.create_group(command, exists=exists)], actor)
        return self._group(command.group)

    @handlers.on(ac.AddGroupMember)
    def _add_member(self, command: ac.AddGroupMember, actor: str) -> ac.Group:
        group, user = self.queries.group(command.group), self.queries.user(command.user)
        self._committer.commit(decide.add_member(command, group, user), actor)
        return self._group(command.group)

    @handlers.on(ac.RemoveGroupMember)
    def _remove_member(self, command: ac.RemoveGroupMember, actor: str) -> ac.Group:
        group = self.queries.group(command.group)
        self._committer.commit(decide.remove_member(command, group), actor)
        return self._group(command.group)

    @handlers.on(ac.DeleteGroup)
    def _delete_group(self, command: ac.DeleteGroup, actor: str) -> None:
        group = self.queries.group(command.group)
        self._committer.commit([decide.delete_group(command, group)], actor)

    def _group(self, name: str) -> ac.Group:
        group = self.queries.group(name)
        if group is None:
            raise _not_found("group", name)
        return group

    # tokens --------------------------------------------------------------------------

    @handlers.on(ac.CreateToken)
    def _create_token(self, command: ac.CreateToken, actor: str) -> ac.CreatedToken:
        user_name = command.user or user_of(actor)
        token = credentials.new_token()
        event = decide.create_token(
            command, self.queries.user(user_name), user_name=user_name, token_id=uuid7(),
            token_hash=credentials.token_hash(token), now_ms=now_ms(),
        )  # fmt: skip
        self._committer.commit([event], actor)
        stored = self.queries.token(event.id)
        if stored is None:
            raise _not_found("token", event.id)
        return ac.CreatedToken(**stored.model_dump(), token=token)

    @handlers.on(ac.RevokeToken)
    def _revoke_token(self, command: ac.RevokeToken, actor: str) -> None:
        self._committer.commit(decide.revoke_token(command, self.queries.token(command.id)), actor)

    # permissions ---------------------------------------------------------------------

    def _principal_exists(self, principal: str) -> bool:
        who, name = decide.check_principal(principal)
        found = self.queries.user(name) if who == "user" else self.queries.group(name)
        return found is not None

    @handlers.on(ac.SetPermission)
    def _set_permission(self, command: ac.SetPermission, actor: str) -> ac.Permission:
        exists = self._principal_exists(command.principal)
        self._committer.commit([decide.set_permission(command, principal_exists=exists)], actor)
        granted = self.queries.permission(command.kind, command.key, command.principal)
        if granted is None:
            raise _not_found("permission", f"{command.kind}:{command.key}:{command.principal}")
        return granted

    @handlers.on(ac.RemovePermission)
    def _remove_permission(self, command: ac.RemovePermission, actor: str) -> None:
        current = self.queries.permission(command.kind, command.key, command.principal)
        self._committer.commit(decide.remove_permission(command, current), actor)

    # who acts ------------------------------------------------------------------------

    def whoami(self, actor: str) -> ac.WhoAmI:
        """Who acts next to the log (embedded mode): the local user the SDK's actor names
        (`user:<name>`), who may do everything, since nothing is checked there; their
        groups as the views record them, should a user of that name exist."""
        name = user_of(actor)
        user = self.queries.user(name)
        return ac.WhoAmI(
            user=name, admin=True, groups=user.groups if user is not None else [],
            token_id=None, method="local", auth=False,
        )  # fmt: skip

    # first start ---------------------------------------------------------------------

    def ensure_admin(self, name: str | None, password: str | None, *, actor: str) -> str | None:
        """With auth on, make sure someone can sign in: an admin already in the views, or
        the one the settings name (created, or promoted with the given password). Returns
        the admin created or promoted, None when one existed."""
        if self.queries.any_admin():
            return None
        if not name or not password:
            raise InvalidInput(
                "auth is on but no admin exists: set LEDGERFLOW_ADMIN_USER and "
                "LEDGERFLOW_ADMIN_PASSWORD for the first start (no default password is invented)",
                field="LEDGERFLOW_ADMIN_USER",
            )
        if self.queries.user(name) is None:
            self.execute(ac.CreateUser(name=name, password=password, admin=True), actor=actor)
        else:
            self.execute(ac.SetPassword(name=name, password=password), actor=actor)
            self.execute(ac.SetAdmin(name=name, admin=True), actor=actor)
        return name
