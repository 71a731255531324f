"""Distributed training: one job, N Ray Train workers (TorchTrainer, gloo on CPU), one run.

`main()` is the driver of a distributed job: the job's supervisor starts it as a
child process that joins the job's Ray cluster, so cancelling the job kills the
driver and Ray stops its workers with it. Each worker runs the user's loop with
the SDK pointed at the job's run (`LEDGERFLOW_RUN_ID`) and its rank set
(`LEDGERFLOW_RANK`): every worker's metrics land in the one run as
`<key>/rank<N>`, and rank 0's also under the plain key. Rank 0 is the one that
should log the model (`is_rank_zero()`).

Only runs inside a job's process; it is the one module besides runtime.py that
imports Ray.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledgerflow.events.settings import PREFIX

WorkerSession = Callable[[Callable[..., Any], dict[str, Any]], None]


@dataclass(frozen=True)
class Plan:
    """What the driver needs: the per-worker loop, its config and the scaling. Nothing
    in it depends on the job's id or run, so the submitter pickles it before the job is
    recorded; the driver takes those from its own process (see `main`)."""

    loop: Callable[..., Any]
    config: dict[str, Any]
    num_workers: int
    gpus_per_worker: float
    cpus_per_worker: float
    session: WorkerSession
    """`session(loop, config)` runs the loop with the SDK pointed at the job's run, once
    the worker's environment names the run and its rank (`ledgerflow.jobs` plans it:
    workers do not import the fluent API)."""


def rank() -> int:
    """This worker's rank in its distributed job (0 outside one)."""
    return int(os.environ.get(PREFIX + "RANK", "0"))


def is_rank_zero() -> bool:
    return rank() == 0


def _worker(
    session: WorkerSession,
    loop: Callable[..., Any],
    env: Mapping[str, str],
    config: dict[str, Any],
) -> None:
    """One Ray Train worker: name the job's run and this worker's rank in its
    environment, then run the user's loop in the planned session."""
    import ray.train

    os.environ.update(env)
    os.environ[PREFIX + "RANK"] = str(ray.train.get_context().get_world_rank())
    session(loop, config)


def main() -> None:
    """Entry of a distributed job's driver process: `python -c ... PLAN_FILE`, started by
    the job's supervisor with the plan file in the job's folder and the job's settings
    and run in its `LEDGERFLOW_*` environment. The workers get that environment, and
    Ray Train keeps its files in the job's folder."""
    import cloudpickle
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    plan_file = Path(sys.argv[1])
    plan: Plan = cloudpickle.loads(plan_file.read_bytes())
    env = {k: v for k, v in os.environ.items() if k.startswith(PREFIX)}
    storage = str(plan_file.resolve().parent / "ray")
    ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=True, configure_logging=False)
    session, loop = plan.session, plan.loop

    def per_worker(config: dict[str, Any]) -> None:
        _worker(session, loop, env, config)

    per_worker_resources = {"CPU": plan.cpus_per_worker}
    if plan.gpus_per_worker > 0:
        per_worker_resources["GPU"] = plan.gpus_per_worker
    trainer = TorchTrainer(
        per_worker,
        train_loop_config=plan.config,
        torch_config=TorchConfig(backend="gloo"),
        scaling_config=ScalingConfig(
            num_workers=plan.num_workers,
            use_gpu=plan.gpus_per_worker > 0,
            resources_per_worker=per_worker_resources,
        ),
        run_config=RunConfig(
            name="train", storage_path=storage, failure_config=FailureConfig(max_failures=0)
        ),
    )
    trainer.fit()
