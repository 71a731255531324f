"""The bundles view, folded from `bundle.*` events: one row per bundle, with its state."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel

from ledgerflow.services.projector.tables import table


class BundleRow(SQLModel, table=True):
    __tablename__ = "bundles"
    __table_args__ = (Index("bundles_by_version", "name", "version"),)
    id: str = Field(primary_key=True)
    name: str
    version: int
    target: str
    status: str  # requested, built or failed
    source: str = Field(sa_column=Column(Text, nullable=False))
    trigger: str = "manual"
    artifact_uri: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    runtime: str | None = None
    size_bytes: int | None = None
    max_abs_diff: float | None = None
    manifest: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # JSON
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    creation_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_updated_time: int = Field(sa_column=Column(BigInteger, nullable=False))


BUNDLES = table(BundleRow)
