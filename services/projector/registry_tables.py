"""View tables of the model registry, folded from `model.*` events."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel

from ledgerflow.services.projector.tables import table


class RegisteredModelRow(SQLModel, table=True):
    __tablename__ = "registered_models"
    name: str = Field(primary_key=True)
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    creation_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_updated_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    # The highest version number ever assigned: numbers are never reused, even after a
    # version is deleted.
    last_version: int = 0


class RegisteredModelTagRow(SQLModel, table=True):
    __tablename__ = "registered_model_tags"
    name: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    value: str = Field(sa_column=Column(Text, nullable=False))


class ModelVersionRow(SQLModel, table=True):
    __tablename__ = "model_versions"
    __table_args__ = (Index("model_versions_by_run", "run_id"),)
    name: str = Field(primary_key=True)
    version: int = Field(primary_key=True)
    source: str = Field(sa_column=Column(Text, nullable=False))
    run_id: str | None = None
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    user_id: str = ""
    run_link: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    stage: str = "None"
    status: str = "READY"
    creation_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_updated_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    # Which event created it: how the registering caller learns its version number.
    creation_event_id: str = Field(unique=True)


class ModelVersionTagRow(SQLModel, table=True):
    __tablename__ = "model_version_tags"
    name: str = Field(primary_key=True)
    version: int = Field(primary_key=True)
    key: str = Field(primary_key=True)
    value: str = Field(sa_column=Column(Text, nullable=False))


class ModelAliasRow(SQLModel, table=True):
    __tablename__ = "model_aliases"
    name: str = Field(primary_key=True)
    alias: str = Field(primary_key=True)
    version: int


REGISTERED_MODELS = table(RegisteredModelRow)
REGISTERED_MODEL_TAGS = table(RegisteredModelTagRow)
MODEL_VERSIONS = table(ModelVersionRow)
MODEL_VERSION_TAGS = table(ModelVersionTagRow)
MODEL_ALIASES = table(ModelAliasRow)
