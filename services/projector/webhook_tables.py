"""The webhooks view, folded from `webhook.*` events.

Only the configuration lives here, the signing secret as the events carry it: sealed
with the server's key (and the key's id), or, for webhooks from before sealing, the
plain text their events hold. Delivery progress (cursors, attempts) is not a
view of the log but the dispatcher's own state, kept in services/webhooks/store.py
so that `ledgerflow replay` never resets it.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Text
from sqlmodel import Field, SQLModel

from ledgerflow.services.projector.tables import table


class WebhookRow(SQLModel, table=True):
    __tablename__ = "webhooks"
    id: str = Field(primary_key=True)
    name: str = Field(unique=True)
    url: str = Field(sa_column=Column(Text, nullable=False))
    events: str = Field(sa_column=Column(Text, nullable=False))  # a JSON list of patterns
    secret: str = Field(sa_column=Column(Text, nullable=False))
    """Plain text only for webhooks whose events predate sealing, else ''."""
    sealed_secret: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    secret_key_id: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    active: bool = True
    deliver_after: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    creation_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_updated_time: int = Field(sa_column=Column(BigInteger, nullable=False))


WEBHOOKS = table(WebhookRow)
