"""What every autolog integration shares.

- per-integration settings (`configure`, `config`), set by `ledgerflow.<flavor>.autolog()`;
- reversible patches of framework methods (`patch`, `unpatch`);
- `call_autologged`: runs the framework's training call inside a run (the active one, or
  one it starts and ends), and turns every failure of *logging* into a warning, so that
  autologging never makes training fail; only the framework's own errors propagate;
- post-import hooks (`when_imported`), so that enabling autologging never imports a
  framework: the patches go in when the user imports it.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import logging
import sys
import threading
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("ledgerflow.autolog")

Config = dict[str, Any]
# before(run_id, config, args, kwargs) -> (args, kwargs, after): may rewrite the call's
# arguments (e.g. add a callback); `after(result)` logs what training produced.
Before = Callable[
    [str, Config, tuple[Any, ...], dict[str, Any]],
    tuple[tuple[Any, ...], dict[str, Any], Callable[[Any], None] | None],
]

AUTOLOGGING_TAG = "mlflow.autologging"  # MLflow's tag on the runs autologging starts
_MARK = "__ledgerflow_autolog__"

_lock = threading.RLock()
_configs: dict[str, Config] = {}
_local = threading.local()


# settings ----------------------------------------------------------------------------------
def configure(integration: str, settings: Mapping[str, Any]) -> None:
    with _lock:
        _configs[integration] = dict(settings)


def install(
    integration: str, settings: Mapping[str, Any], libraries: Sequence[str], patch: Hook
) -> None:
    """A flavor's `autolog(...)`: store its settings, then `patch` each of `libraries` as
    soon as it is imported (at once if it is); with `settings["disable"]`, take the
    integration's patches out instead."""
    configure(integration, settings)
    if settings.get("disable"):
        cancel_hooks(libraries)
        unpatch(integration)
        return
    for library in libraries:
        when_imported(library, patch)


def config(integration: str) -> Config | None:
    """The integration's settings, or None when it is not enabled."""
    cfg = _configs.get(integration)
    return None if cfg is None or cfg.get("disable") else cfg


def settings_of(integration: str) -> Config | None:
    """The stored settings, enabled or not (None if never configured)."""
    return _configs.get(integration)


def warn(integration: str, what: str, error: BaseException) -> None:
    """Report a logging failure (never raise: a warning must not break training)."""
    cfg = _configs.get(integration) or {}
    if not cfg.get("silent"):
        log.warning(
            "ledgerflow autolog (%s): %s failed; training is not affected: %s: %s",
            integration,
            what,
            type(error).__name__,
            error,
        )


def safely(integration: str, what: str, fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as e:
        warn(integration, what, e)
        return None


# patches -----------------------------------------------------------------------------------
@dataclass
class _Patch:
    owner: type | types.ModuleType
    name: str
    original: Any  # the attribute as stored on `owner`, when it had its own
    had_own: bool


_patches: dict[str, list[_Patch]] = {}


def patch(
    integration: str,
    owner: type | types.ModuleType,
    name: str,
    make_wrapper: Callable[[Callable[..., Any]], Callable[..., Any]],
) -> bool:
    """Replace `owner.name` (a class's method, own or inherited, or a module's function)
    by `make_wrapper(original)`; False if it already is one of this integration's
    wrappers."""
    with _lock:
        static = inspect.getattr_static(owner, name)
        if getattr(static, _MARK, None) == integration:
            return False
        had_own = name in owner.__dict__
        wrapper = make_wrapper(getattr(owner, name))
        setattr(wrapper, _MARK, integration)
        setattr(owner, name, wrapper)
        _patches.setdefault(integration, []).append(_Patch(owner, name, static, had_own))
        return True


def unpatch(integration: str) -> None:
    with _lock:
        for p in reversed(_patches.pop(integration, [])):
            if p.had_own:
                setattr(p.owner, p.name, p.original)
            else:
                delattr(p.owner, p.name)


# the patched call ---------------------------------------------------------------------------
@contextmanager
def _session() -> Iterator[bool]:
    """True for the outermost autologged call; calls made inside it (a Pipeline fitting its
    steps, a search fitting candidates) are not logged on their own."""
    depth: int = getattr(_local, "depth", 0)
    _local.depth = depth + 1
    try:
        yield depth == 0
    finally:
        _local.depth = depth


def _open_run(integration: str, cfg: Config) -> tuple[str, bool] | None:
    """(run id, whether autologging started it), or None to train without logging."""
    import ledgerflow as lf

    active = lf.active_run()
    if active is not None:
        return None if cfg.get("exclusive") else (str(active.info.run_id), False)
    tags = {AUTOLOGGING_TAG: integration, **(cfg.get("extra_tags") or {})}
    run = lf.start_run(tags=tags)
    return str(run.info.run_id), True


def _close_run(run_id: str, status: str) -> None:
    """End the run autologging started, even when its last metrics cannot be written."""
    from ledgerflow import fluent

    error: Exception | None = None
    try:
        fluent._buffer_flush(run_id)
    except Exception as e:
        error = e
    fluent._end(run_id, status)
    if error is not None:
        raise error


def call_autologged(
    integration: str,
    original: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    before: Before,
) -> Any:
    """Call `original(*args, **kwargs)` with autologging around it, if enabled."""
    cfg = config(integration)
    if cfg is None:
        return original(*args, **kwargs)
    with _session() as outermost:
        if not outermost:
            return original(*args, **kwargs)
        opened = safely(integration, "starting a run", _open_run, integration, cfg)
        if opened is None:
            return original(*args, **kwargs)
        run_id, managed = opened
        call_args, call_kwargs, after = args, kwargs, None
        try:
            call_args, call_kwargs, after = before(run_id, cfg, args, kwargs)
        except Exception as e:
            warn(integration, "logging before training", e)
        try:
            result = original(*call_args, **call_kwargs)
        except BaseException as e:
            if managed:
                status = "KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED"
                safely(integration, "ending the run", _close_run, run_id, status)
            raise
        if after is not None:
            safely(integration, "logging after training", after, result)
        if managed:
            safely(integration, "ending the run", _close_run, run_id, "FINISHED")
        else:
            safely(integration, "writing metrics", _flush, run_id)
        return result


def _flush(run_id: str) -> None:
    from ledgerflow import fluent

    fluent._buffer_flush(run_id)


# logging to a given run ------------------------------------------------------------------
def log_params(run_id: str, params: Mapping[str, Any]) -> None:
    """Params as MLflow's autologging stores them: str(), cut to the length limit."""
    from ledgerflow import fluent
    from ledgerflow.events.limits import MAX_PARAM_VALUE_LENGTH

    if params:
        items = [(str(k), str(v)[:MAX_PARAM_VALUE_LENGTH]) for k, v in params.items()]
        fluent._client().log_batch(run_id, params=items)


def set_tags(run_id: str, tags: Mapping[str, Any]) -> None:
    from ledgerflow import fluent

    if tags:
        fluent._client().log_batch(run_id, tags=[(str(k), str(v)) for k, v in tags.items()])


def log_metrics(run_id: str, metrics: Mapping[str, Any], step: int | None = None) -> None:
    """Buffered like lf.log_metric; values that are not numbers are skipped."""
    import ledgerflow as lf

    values = {}
    for k, v in metrics.items():
        try:
            values[str(k)] = float(v)
        except (TypeError, ValueError):
            continue
    if values:
        lf.log_metrics(values, step=step, run_id=run_id)


def log_tensorboard_events(run_id: str) -> None:
    """The run's metrics so far as a TensorBoard event file among its artifacts
    (`tensorboard_logs/`), written after the buffered points are stored."""
    from ledgerflow import fluent
    from ledgerflow.tensorboard import log_run_events

    fluent._buffer_flush(run_id)
    log_run_events(fluent._client(), run_id)


# post-import hooks ---------------------------------------------------------------------------
Hook = Callable[[types.ModuleType], None]
_hooks: dict[str, list[Hook]] = {}
_executed: set[str] = set()  # watched modules whose code has run (their hooks may be running)


def _fully_imported(name: str) -> types.ModuleType | None:
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    if module is None or (getattr(spec, "_initializing", False) and name not in _executed):
        return None
    return module


def when_imported(name: str, hook: Hook) -> None:
    """Run `hook(module)` now if `name` is imported, else right after its first import."""
    with _lock:
        module = _fully_imported(name)
        if module is None:
            _hooks.setdefault(name, []).append(hook)
            if not any(isinstance(f, _HookFinder) for f in sys.meta_path):
                sys.meta_path.insert(0, _HookFinder())
            return
    hook(module)


def cancel_hooks(names: Sequence[str]) -> None:
    with _lock:
        for name in names:
            _hooks.pop(name, None)


def _fire(module: types.ModuleType) -> None:
    with _lock:
        hooks = _hooks.pop(module.__name__, [])
    for hook in hooks:
        try:
            hook(module)
        except Exception as e:
            log.warning("ledgerflow autolog: enabling it for %s failed: %s", module.__name__, e)


class _HookedLoader(importlib.abc.Loader):
    """Wraps the real loader of a watched module to run the hooks once it has executed."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: types.ModuleType) -> None:
        # Put the real loader back before anything else sees the module.
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        _executed.add(module.__name__)
        _fire(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _HookFinder(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self._busy = threading.local()

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _hooks or getattr(self._busy, "name", None) == fullname:
            return None
        self._busy.name = fullname
        try:
            spec = importlib.util.find_spec(fullname)  # ask the finders after this one
        except (ImportError, ValueError):
            return None
        finally:
            self._busy.name = None
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _HookedLoader(spec.loader)
        return spec


class CallableModule(types.ModuleType):
    """A module that forwards calls to its `autolog` function.

    `import ledgerflow.x.autolog` sets the package attribute `autolog` to the submodule,
    shadowing the function of the same name that packages re-export; with this class,
    `ledgerflow.x.autolog(...)` works whichever of the two the attribute holds.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.autolog(*args, **kwargs)
