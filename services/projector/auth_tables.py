"""The identity and permission views, folded from `user.*`, `group.*`, `token.*` and
`permission.*` events (and the creator's grant from each resource's creation).

Views like any other: `ledgerflow replay` rebuilds them, and every gateway behind one
log folds the same ones, so they agree on who may do what.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Text
from sqlmodel import Field, SQLModel

from ledgerflow.services.projector.tables import table


class UserRow(SQLModel, table=True):
    __tablename__ = "auth_users"
    name: str = Field(primary_key=True)
    password_hash: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    admin: bool = False
    creation_time: int = Field(sa_column=Column(BigInteger, nullable=False))


class GroupRow(SQLModel, table=True):
    __tablename__ = "auth_groups"
    name: str = Field(primary_key=True)
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    creation_time: int = Field(sa_column=Column(BigInteger, nullable=False))


class GroupMemberRow(SQLModel, table=True):
    __tablename__ = "auth_group_members"
    group: str = Field(primary_key=True)
    user: str = Field(primary_key=True, index=True)


class TokenRow(SQLModel, table=True):
    __tablename__ = "auth_tokens"
    id: str = Field(primary_key=True)
    user: str = Field(index=True)
    token_hash: str = Field(unique=True)
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    creation_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    expires: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    revoked: bool = False


class PermissionRow(SQLModel, table=True):
    __tablename__ = "auth_permissions"
    kind: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    principal: str = Field(primary_key=True, index=True)
    level: str
    source: str = "grant"  # "grant", or "creator" for the MANAGE a resource's creator gets


USERS = table(UserRow)
GROUPS = table(GroupRow)
GROUP_MEMBERS = table(GroupMemberRow)
TOKENS = table(TokenRow)
PERMISSIONS = table(PermissionRow)


class AuthGenerationRow(SQLModel, table=True):
    """Bumped in the same transaction as every change to the tables above, so a gateway
    can keep what it verified (tokens, passwords, levels) until the next bump: one
    primary-key read per request instead of the lookups. `epoch` names the event that
    started the count, so views folded from another log never share a generation."""

    __tablename__ = "auth_generation"
    id: int = Field(default=1, primary_key=True)
    epoch: str
    n: int = Field(sa_column=Column(BigInteger, nullable=False))


AUTH_GENERATION = table(AuthGenerationRow)
