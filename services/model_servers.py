"""The health of model servers, as an operator sees it on the Operations page.

Two kinds: the deployment replica that `ledgerflow server` hosts in its own process (its
state is read directly), and the model servers listed in `LEDGERFLOW_MODEL_SERVERS`
(`ledgerflow serve` processes and deployment replicas elsewhere), each asked, in parallel
and with a short timeout, for its Open Inference Protocol readiness (`/v2/health/ready`)
and metadata (`/v2`). The views do not know model servers (they follow the log but write
nothing to it while idle), so this list is configuration, like a Prometheus scrape list.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import httpx
from pydantic import Field

from ledgerflow.events.wire import Out

if TYPE_CHECKING:
    from ledgerflow.services.serving.deployment import DeploymentHost

PROBE_TIMEOUT_S = 1.0
HOSTED = "(this server)"


class HostedDeployment(Out):
    name: str
    ready: bool = Field(description="every variant with traffic and every shadow loaded")
    serving: list[str] = Field(description="the variants that take traffic")


class ModelServerHealth(Out):
    url: str = Field(description=f'where it answers; "{HOSTED}" for the replica it hosts')
    ready: bool
    server: str | None = Field(description="the server's name and version (OIP metadata)")
    replica: str | None = Field(description="the replica's name in inference events")
    deployments: list[HostedDeployment] = Field(default_factory=list)
    latency_ms: float | None = Field(description="how long the readiness probe took")
    error: str | None = Field(description="why it is not ready: unreachable, refused, loading")


def hosted(host: DeploymentHost) -> ModelServerHealth | None:
    """The replica `ledgerflow server` runs beside its gateway; None while there is no
    deployment for it to serve."""
    deployments = [
        HostedDeployment(name=name, ready=host.ready(name), serving=list(dep.serving))
        # a copy: the host's follower thread adds deployments while a request reads them
        for name, dep in sorted(dict(host.deployments).items())
        if dep.status != "deleted"
    ]
    if not deployments:
        return None
    loading = [d.name for d in deployments if not d.ready]
    return ModelServerHealth(
        url=HOSTED,
        ready=not loading,
        server=None,
        replica=host.replica,
        deployments=deployments,
        latency_ms=None,
        error=f"loading: {', '.join(loading)}" if loading else None,
    )


def probe(url: str, timeout: float = PROBE_TIMEOUT_S) -> ModelServerHealth:
    """Ask one model server whether it is ready; never raises."""
    base = url.rstrip("/")
    started = time.perf_counter()
    try:
        with httpx.Client(timeout=timeout) as client:
            ready = client.get(f"{base}/v2/health/ready")
            latency = round((time.perf_counter() - started) * 1000, 1)
            meta = client.get(f"{base}/v2")
    except httpx.HTTPError as e:
        why = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        return ModelServerHealth(
            url=url, ready=False, server=None, replica=None, latency_ms=None,
            error=f"unreachable: {why}",
        )  # fmt: skip
    server = None
    if meta.status_code == 200:
        try:
            doc = meta.json()
            server = f"{doc.get('name', '?')} {doc.get('version', '')}".strip()
        except (ValueError, AttributeError):  # not an OIP server's metadata
            server = None
    error = None
    if ready.status_code == 503:
        error = "loading: not every model is loaded and warmed up yet"
    elif ready.status_code != 200:
        error = f"answered {ready.status_code} to /v2/health/ready"
    return ModelServerHealth(
        url=url, ready=ready.status_code == 200, server=server, replica=None,
        latency_ms=latency, error=error,
    )  # fmt: skip


def health(urls: Sequence[str], host: DeploymentHost | None = None) -> list[ModelServerHealth]:
    """The hosted replica (when there is one) and every listed server, probed in parallel."""
    here = hosted(host) if host is not None else None
    out = [here] if here is not None else []
    if urls:
        with ThreadPoolExecutor(max_workers=min(8, len(urls))) as pool:
            out.extend(pool.map(probe, urls))
    return out
