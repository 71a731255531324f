"""What the SDK and CLI show about a bundle, as the bundles view holds it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Bundle:
    """One deployable form of one model version. `status` is `requested` while it is being
    built, then `built` (with `artifact_uri` and `manifest`) or `failed` (with `reason`)."""

    id: str
    name: str
    version: int
    target: str
    status: str
    source: str
    trigger: str
    creation_timestamp: int
    last_updated_timestamp: int
    artifact_uri: str | None = None
    runtime: str | None = None
    size_bytes: int | None = None
    max_abs_diff: float | None = None
    reason: str | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
