"""Bundle commands (`ledgerflow.events.bundle_commands`): request conversions, run them
through the Runtime, record the end; set and clear the policy that builds them.

`BuildBundles` appends one `bundle.requested` per target, submits one task per target
to the runtime (Ray, or inline in tests), and when each answers appends
`bundle.built` (after storing the files) or `bundle.failed` with the reason.
Without `wait` a thread waits for the tasks, so the caller gets the
requested bundles at once and reads their end from the view later.
"""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path
from typing import Any

from ledgerflow.events import bundle_commands as bc
from ledgerflow.events import bundle_payloads as b
from ledgerflow.events import model_payloads as m
from ledgerflow.events.bundle_entities import Bundle
from ledgerflow.events.commands import R
from ledgerflow.events.envelope import uuid7
from ledgerflow.events.errors import InvalidInput, LedgerflowError, Timeout, Unavailable
from ledgerflow.events.payloads import Payload
from ledgerflow.services.artifacts import ArtifactStore
from ledgerflow.services.bundles import files
from ledgerflow.services.bundles.decide import (
    check_targets,
    decide_clear_policy,
    decide_set_policy,
)
from ledgerflow.services.commands import Committer, Handlers
from ledgerflow.services.projector.bundle_queries import BundleQueries
from ledgerflow.services.registry.service import RegistryService
from ledgerflow.services.tracking.service import TrackingService
from ledgerflow.workers.bundles.build import TARGETS_BY_FLAVOR, BuildRequest, build_bundle
from ledgerflow.workers.runtime import (
    Handle,
    Resources,
    Runtime,
    TaskCancelled,
    TaskFailed,
)

logger = logging.getLogger("ledgerflow.bundles")


class BundleService:
    def __init__(
        self,
        committer: Committer,
        queries: BundleQueries,
        registry: RegistryService,
        tracking: TrackingService,
        artifacts: ArtifactStore,
        runtime: Runtime,
        *,
        task_timeout_s: float = 1800.0,
        allow_pickle: bool = True,
    ) -> None:
        """`allow_pickle`: LEDGERFLOW_ALLOW_PICKLE of the settings the service runs with,
        passed to each conversion task (loading a pickled model runs its code)."""
        self._committer = committer
        self.queries = queries
        self.registry = registry
        self.tracking = tracking
        self.artifacts = artifacts
        self.runtime = runtime
        self.task_timeout_s = task_timeout_s
        self.allow_pickle = allow_pickle

    handlers = Handlers["BundleService"]()

    def execute(self, command: bc.BundleCommand[R], *, actor: str) -> R:
        return self.handlers.run(self, command, actor)

    @handlers.on(bc.BuildBundles)
    def _build(self, c: bc.BuildBundles, actor: str) -> list[Bundle]:
        """Build `targets` (every target the model's flavor has, when None) of the version
        `model_uri` (`models:/name/3`, `models:/name@champion`...) names. With `wait`,
        the bundles as they ended (built or failed); without, as requested."""
        mv = self.registry.resolve_models_uri(c.model_uri)
        chosen = check_targets(c.targets)
        work = files.scratch()
        try:
            model_dir = files.local_model_dir(mv, self.tracking, work / "model")
            if chosen is None:
                flavors = files.flavors_of(model_dir)
                found = [TARGETS_BY_FLAVOR[f] for f in TARGETS_BY_FLAVOR if f in flavors]
                chosen = list(found[0]) if found else ["onnx"]  # fails with the reason
            requested = [
                b.BundleRequested(
                    id=uuid7(), name=mv.name, version=mv.version, target=t,
                    source=mv.source, trigger=c.trigger,
                )
                for t in chosen
            ]  # fmt: skip
            self._committer.commit(requested, actor)
            handles = self._submit_all(requested, model_dir, work, actor)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        if not c.wait:
            threading.Thread(
                target=self._finish_logged, args=(handles, work, actor), name="bundle-build",
                daemon=True,
            ).start()  # fmt: skip
            return [self.queries.get_bundle(r.id) for r in requested]
        self._finish(handles, work, actor)
        return [self.queries.get_bundle(r.id) for r in requested]

    @handlers.on(bc.SetBundlePolicy)
    def _set_policy(self, c: bc.SetBundlePolicy, actor: str) -> dict[str, str]:
        events = decide_set_policy(self.registry.queries.get_registered_model(c.name), c)
        self._committer.commit(events, actor)
        return {e.key: e.value for e in events if isinstance(e, m.RegisteredModelTagSet)}

    @handlers.on(bc.ClearBundlePolicy)
    def _clear_policy(self, c: bc.ClearBundlePolicy, actor: str) -> None:
        model = self.registry.queries.get_registered_model(c.name)
        self._committer.commit(decide_clear_policy(model), actor)

    def _submit_all(
        self, requested: list[b.BundleRequested], model_dir: Path, work: Path, actor: str
    ) -> list[tuple[b.BundleRequested, Handle]]:
        """Hand every build to the runtime. When the runtime cannot take them (Ray failed to
        start), the requested bundles end as failed with the reason, rather than pending
        forever, and the caller gets Unavailable."""
        try:
            return [(r, self._submit(r, model_dir, work)) for r in requested]
        except Exception as e:  # say so on each bundle, then refuse
            why = e.message if isinstance(e, LedgerflowError) else f"{type(e).__name__}: {e}"
            reason = f"the build could not be started: {why}"
            failed = [b.BundleFailed(id=r.id, reason=reason) for r in requested]
            self._committer.commit(failed, actor)
            if isinstance(e, LedgerflowError):
                raise
            raise Unavailable(reason) from e

    def _submit(self, r: b.BundleRequested, model_dir: Path, work: Path) -> Handle:
        request = BuildRequest(
            bundle_id=r.id, name=r.name, version=r.version, target=r.target, source=r.source,
            model_dir=str(model_dir), out_dir=str(work / r.id), allow_pickle=self.allow_pickle,
        )  # fmt: skip
        return self.runtime.submit(
            build_bundle, request, name=f"bundle-{r.target}-{r.id}", resources=Resources(cpus=1)
        )

    def _finish(
        self, handles: list[tuple[b.BundleRequested, Handle]], work: Path, actor: str
    ) -> None:
        try:
            for request, handle in handles:
                self._committer.commit([self._outcome(request, handle, work)], actor)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _finish_logged(
        self, handles: list[tuple[b.BundleRequested, Handle]], work: Path, actor: str
    ) -> None:
        """`_finish` in a thread nobody joins: a failure to record is logged, not lost."""
        try:
            self._finish(handles, work, actor)
        except Exception:
            logger.exception("recording the end of bundles %s failed", [r.id for r, _ in handles])

    def _outcome(self, r: b.BundleRequested, handle: Handle, work: Path) -> Payload:
        """What the task answered, as the event that ends the bundle."""
        try:
            answer: dict[str, Any] = self.runtime.result(handle, timeout=self.task_timeout_s)
        except TaskFailed as e:
            return b.BundleFailed(id=r.id, reason=f"the conversion task crashed: {e.error}")
        except Timeout:
            self.runtime.cancel(handle)
            return b.BundleFailed(
                id=r.id, reason=f"the conversion took longer than {self.task_timeout_s:g} s"
            )
        except TaskCancelled:
            return b.BundleFailed(id=r.id, reason="the conversion task was cancelled")
        except Exception as e:  # the worker died, Ray went away: the bundle must still end
            return b.BundleFailed(
                id=r.id, reason=f"the conversion task was lost: {type(e).__name__}: {e}"
            )
        if "error" in answer:
            return b.BundleFailed(id=r.id, reason=str(answer["error"]))
        manifest = answer["manifest"]
        prefix = files.bundle_prefix(r.name, r.version, r.target, r.id)
        try:
            uri = files.store_bundle(self.artifacts, prefix, work / r.id)
        except (LedgerflowError, OSError) as e:
            return b.BundleFailed(id=r.id, reason=f"storing the bundle failed: {e}")
        return b.BundleBuilt(
            id=r.id, artifact_uri=uri, runtime=manifest["runtime"]["name"],
            size_bytes=manifest["size_bytes"], max_abs_diff=manifest["parity"]["max_abs_diff"],
            manifest=manifest,
        )  # fmt: skip

    # reads ---------------------------------------------------------------------------
    def list_bundles(
        self, name: str, version: int | str | None = None, *, include_failed: bool = False
    ) -> list[Bundle]:
        """Built bundles of a model, or of one version; failed ones too when asked."""
        self.registry.queries.get_registered_model(name)
        v = int(version) if version is not None else None
        if v is not None:
            self.registry.queries.get_model_version(name, v)
        states = ("built", "failed", "requested") if include_failed else ("built",)
        return self.queries.list_bundles(name, v, states)

    def get_bundle(self, bundle_id: str) -> Bundle:
        return self.queries.get_bundle(bundle_id)

    def download(self, bundle_id: str, dst: Path) -> Path:
        """The bundle's files, as its manifest lists them, copied into `dst`."""
        bundle = self.queries.get_bundle(bundle_id)
        if bundle.status != "built":
            raise InvalidInput(
                f"bundle {bundle_id} is {bundle.status}, not built; only built bundles have files"
                + (f" ({bundle.reason})" if bundle.reason else ""),
                field="bundle_id",
            )
        prefix = files.bundle_prefix(bundle.name, bundle.version, bundle.target, bundle.id)
        listed = [str(f["path"]) for f in bundle.manifest.get("files", [])]
        return files.fetch_bundle(self.artifacts, prefix, listed, dst)
