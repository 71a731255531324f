"""Time travel: the views as they were at a past point of the log, folded on demand.

The property: after any sequence of commands, reading as of the position (or the
time) reached after each step answers exactly what the live views answered then.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledgerflow.client import Client
from ledgerflow.entities import ViewType
from ledgerflow.events.as_of import AsOf
from ledgerflow.events.envelope import now_ms
from ledgerflow.events.errors import InvalidInput, LedgerflowError
from ledgerflow.events.log import Checkpoint
from ledgerflow.events.settings import load_settings
from ledgerflow.services.bootstrap import Backend, bootstrap

EXPERIMENTS = ["cv", "nlp"]
KEYS = ["lr", "acc"]
MODELS = ["digits", "iris"]
ALIASES = ["champion", "challenger"]
STAGES = ["Staging", "Production", "Archived", "None"]

small = st.integers(0, 3)
version = st.integers(0, 2)
making = st.one_of(
    st.tuples(st.just("experiment"), st.sampled_from(EXPERIMENTS)),
    st.tuples(st.just("run"), small),
    st.tuples(st.just("model"), st.sampled_from(MODELS)),
    st.tuples(st.just("version"), st.sampled_from(MODELS), small),
)
changing = st.one_of(
    st.tuples(st.just("param"), small, st.sampled_from(KEYS), st.sampled_from(["1", "2"])),
    st.tuples(st.just("metric"), small, st.sampled_from(KEYS), st.integers(-3, 3), small),
    st.tuples(st.just("tag"), small, st.sampled_from(KEYS), st.sampled_from(["x", "y"])),
    st.tuples(st.just("end"), small, st.sampled_from(["FINISHED", "FAILED"])),
    st.tuples(st.just("alias"), st.sampled_from(MODELS), st.sampled_from(ALIASES), version),
    st.tuples(
        st.just("stage"), st.sampled_from(MODELS), version, st.sampled_from(STAGES), st.booleans()
    ),
    st.tuples(st.just("model_tag"), st.sampled_from(MODELS), st.sampled_from(["x", "y"])),
)
undoing = st.one_of(
    st.tuples(st.just("delete_experiment"), small),
    st.tuples(st.just("restore_experiment"), small),
    st.tuples(st.just("delete_tag"), small, st.sampled_from(KEYS)),
    st.tuples(st.just("delete_run"), small),
    st.tuples(st.just("restore_run"), small),
    st.tuples(st.just("delete_alias"), st.sampled_from(MODELS), st.sampled_from(ALIASES)),
    st.tuples(st.just("delete_version"), st.sampled_from(MODELS), version),
    st.tuples(st.just("delete_model"), st.sampled_from(MODELS)),
)
commands = st.one_of(making, making, changing, changing, changing, undoing)


class World:
    """Runs commands through a Client and remembers what they made, for the questions."""

    def __init__(self, client: Client) -> None:
        self.c = client
        self.experiments: list[str] = []
        self.runs: list[str] = []

    def pick(self, found: list[str], i: int) -> str | None:
        return found[i % len(found)] if found else None

    def run(self, command: tuple[Any, ...]) -> None:
        kind, *args = command
        c = self.c
        exp = self.pick(self.experiments, args[0]) if isinstance(args[0], int) else None
        run = self.pick(self.runs, args[0]) if isinstance(args[0], int) else None
        try:
            if kind == "experiment":
                self.experiments.append(c.create_experiment(args[0]))
            elif kind == "delete_experiment" and exp:
                c.delete_experiment(exp)
            elif kind == "restore_experiment" and exp:
                c.restore_experiment(exp)
            elif kind == "run" and exp:
                self.runs.append(c.create_run(exp).info.run_id)
            elif kind == "param" and run:
                c.log_param(run, args[1], args[2])
            elif kind == "metric" and run:
                c.log_metric(run, args[1], float(args[2]), timestamp=1_000 + args[3], step=args[3])
            elif kind == "tag" and run:
                c.set_tag(run, args[1], args[2])
            elif kind == "delete_tag" and run:
                c.delete_tag(run, args[1])
            elif kind == "end" and run:
                c.set_terminated(run, args[1])
            elif kind == "delete_run" and run:
                c.delete_run(run)
            elif kind == "restore_run" and run:
                c.restore_run(run)
            elif kind == "model":
                c.create_registered_model(args[0])
            elif kind == "version":
                source = f"runs:/{self.pick(self.runs, args[1]) or 'none'}/model"
                c.create_model_version(args[0], source)
            elif kind == "alias":
                c.set_registered_model_alias(args[0], args[1], args[2] + 1)
            elif kind == "delete_alias":
                c.delete_registered_model_alias(args[0], args[1])
            elif kind == "stage":
                c.transition_model_version_stage(args[0], args[1] + 1, args[2], args[3])
            elif kind == "delete_version":
                c.delete_model_version(args[0], args[1] + 1)
            elif kind == "model_tag":
                c.set_registered_model_tag(args[0], "k", args[1])
            elif kind == "delete_model":
                c.delete_registered_model(args[0])
        except LedgerflowError:
            pass  # refused commands are part of the history too: they store nothing


def attempt(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except LedgerflowError as e:
        return ("error", type(e).__name__)


def answers(c: Client, runs: list[str]) -> dict[str, Any]:
    """What a user could ask about everything the commands touched."""
    out: dict[str, Any] = {"experiments": c.search_experiments(ViewType.ALL)}
    ids = [e.experiment_id for e in out["experiments"]]
    out["runs"] = list(c.search_runs(ids, run_view_type=ViewType.ALL)) if ids else []
    out["good runs"] = (
        list(c.search_runs(ids, "metrics.acc > 0 and params.lr = '1'", ViewType.ALL)) if ids else []
    )
    for run_id in runs:
        out[f"run {run_id}"] = attempt(lambda run_id=run_id: c.get_run(run_id))
        for key in KEYS:
            out[f"history {run_id} {key}"] = attempt(
                lambda run_id=run_id, key=key: c.get_metric_history(run_id, key)
            )
    out["models"] = list(c.search_registered_models(max_results=1000))
    out["versions"] = list(c.search_model_versions())
    for name in MODELS:
        out[f"model {name}"] = attempt(lambda name=name: c.get_registered_model(name))
        out[f"latest {name}"] = attempt(lambda name=name: c.get_latest_versions(name))
        for alias in ALIASES:
            out[f"alias {name}@{alias}"] = attempt(
                lambda name=name, alias=alias: c.get_model_version_by_alias(name, alias)
            )
    return out


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(commands, min_size=1, max_size=30), st.data())
def test_as_of_every_past_position_and_time_answers_what_the_live_views_did(
    history: list[tuple[Any, ...]], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        backend = bootstrap(load_settings(tracking_uri=str(Path(tmp) / "data")))
        try:
            world = World(Client(backend=backend))
            seen: list[tuple[Checkpoint, int, list[str], dict[str, Any]]] = []
            for command in history:
                world.run(command)
                now, runs = now_ms(), list(world.runs)
                seen.append((backend.log.head(), now, runs, answers(world.c, runs)))
                while now_ms() <= now:  # the next step's events are stamped later
                    time.sleep(0.001)
            # Ask in a random order, so snapshots are folded from scratch, reused and extended.
            for i in data.draw(st.permutations(range(len(seen)))):
                checkpoint, moment, runs, live = seen[i]
                assert answers(Client(backend=backend, as_of=checkpoint), runs) == live
                if data.draw(st.booleans()):
                    assert answers(Client(backend=backend, as_of=moment), runs) == live
        finally:
            backend.close()


@pytest.fixture
def history(backend: Backend) -> Iterator[tuple[Client, str, Checkpoint, int]]:
    """A run that had lr=0.1 and acc=0.5 at `before` (a position) and `moment` (a time),
    and later got lr2 and acc=0.9; the model's champion moved from version 1 to 2."""
    c = Client(backend=backend)
    exp = c.create_experiment("cv")
    run = c.create_run(exp).info.run_id
    c.log_param(run, "lr", 0.1)
    c.log_metric(run, "acc", 0.5)
    c.create_registered_model("digits")
    c.create_model_version("digits", f"runs:/{run}/model")
    c.create_model_version("digits", f"runs:/{run}/model")
    c.set_registered_model_alias("digits", "champion", 1)
    before, moment = backend.log.head(), now_ms()
    time.sleep(0.005)
    c.log_param(run, "lr2", 0.2)
    c.log_metric(run, "acc", 0.9)
    c.set_registered_model_alias("digits", "champion", 2)
    yield c, run, before, moment


def test_a_client_as_of_a_position_or_a_time_reads_the_past(
    backend: Backend, history: tuple[Client, str, Checkpoint, int]
) -> None:
    c, run, before, moment = history
    for point in (before, before.encode(), moment, AsOf(time_ms=moment).encode()):
        past = Client(backend=backend, as_of=point)
        assert past.get_run(run).data.params == {"lr": "0.1"}
        assert past.get_run(run).data.metrics == {"acc": 0.5}
        assert past.get_model_version_by_alias("digits", "champion").version == 1
    assert c.get_model_version_by_alias("digits", "champion").version == 2


def test_commands_through_an_as_of_client_are_refused_and_store_nothing(
    backend: Backend, history: tuple[Client, str, Checkpoint, int]
) -> None:
    _, run, before, _ = history
    past = Client(backend=backend, as_of=before)
    head = backend.log.head()
    refused = [
        lambda: past.create_experiment("new"),
        lambda: past.log_param(run, "x", 1),
        lambda: past.log_metric(run, "acc", 1.0),
        lambda: past.set_tag(run, "t", "v"),
        lambda: past.set_terminated(run),
        lambda: past.delete_run(run),
        lambda: past.create_run("0"),
        lambda: past.create_registered_model("other"),
        lambda: past.set_registered_model_alias("digits", "champion", 2),
        lambda: past.transition_model_version_stage("digits", 1, "Production"),
    ]
    for command in refused:
        with pytest.raises(InvalidInput, match="as_of views are read-only") as e:
            command()
        assert e.value.field == "as_of"
    assert backend.log.head() == head
    with pytest.raises(InvalidInput, match="read-only"):
        backend.as_of(before).log.append([])
    with pytest.raises(InvalidInput, match="read-only"):
        backend.as_of(before).embedded()


def test_a_position_past_the_head_is_refused_and_a_time_after_it_is_the_head(
    backend: Backend, history: tuple[Client, str, Checkpoint, int]
) -> None:
    head = backend.log.head()
    past_the_head = str(int(head.encode()) + 1)
    with pytest.raises(InvalidInput, match="past the head") as e:
        Client(backend=backend, as_of=past_the_head).get_experiment("0")
    assert e.value.field == "as_of"
    assert backend.time_travel.resolve(AsOf(time_ms=now_ms() + 60_000)) == head
    assert backend.time_travel.resolve(AsOf.parse("1990-01-01")) == Checkpoint()
    with pytest.raises(InvalidInput, match="ISO-8601"):
        Client(backend=backend, as_of="last tuesday")


def test_a_later_point_extends_a_kept_snapshot_and_the_oldest_are_dropped(
    backend: Backend, history: tuple[Client, str, Checkpoint, int]
) -> None:
    _, run, before, _ = history
    travel = backend.time_travel
    first = travel.snapshot(AsOf(checkpoint=before))
    assert first.started_from is None and first.folded == before.total()
    later = travel.snapshot(AsOf(checkpoint=backend.log.head()))
    assert later.started_from == before  # a copy of the first, plus the events in between
    assert later.folded == backend.log.head().total() - before.total()
    assert travel.snapshot(AsOf(checkpoint=before)) is first  # kept, unchanged
    assert Client(backend=backend, as_of=before).get_run(run).data.params == {"lr": "0.1"}
    for position in range(1, travel.keep + 2):
        travel.snapshot(AsOf.parse(position))
    assert travel.cached() == [Checkpoint({"": p}) for p in range(2, travel.keep + 2)]


def test_a_client_as_of_a_time_keeps_the_position_it_first_resolved(backend: Backend) -> None:
    c = Client(backend=backend)
    exp = c.create_experiment("cv")
    past = Client(backend=backend, as_of=now_ms() + 3_600_000)  # an hour ahead: the head
    assert [e.name for e in past.search_experiments()] == ["cv"]
    c.rename_experiment(exp, "vision")
    assert [e.name for e in past.search_experiments()] == ["cv"]
    assert c.get_experiment(exp).name == "vision"


KAFKA_HISTORY: list[tuple[Any, ...]] = [
    ("experiment", "cv"),
    ("run", 0),
    ("param", 0, "lr", "1"),
    ("metric", 0, "acc", 2, 0),
    ("model", "digits"),
    ("version", "digits", 0),
    ("version", "digits", 0),
    ("alias", "digits", "champion", 0),
    ("experiment", "nlp"),
    ("run", 1),
    ("metric", 1, "acc", 3, 1),
    ("stage", "digits", 1, "Production", True),
    ("alias", "digits", "champion", 1),
    ("tag", 0, "lr", "x"),
    ("end", 0, "FINISHED"),
    ("model", "iris"),
    ("version", "iris", 1),
    ("delete_run", 1),
    ("delete_alias", "digits", "champion"),
    ("delete_experiment", 1),
]


def test_time_travel_on_a_kafka_log_cuts_every_partition_at_the_same_point(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """Streams spread over topics and partitions: a checkpoint names each one's offset, and
    a time cuts each by its own events."""
    import uuid

    from ledgerflow.events.kafka_log import KafkaEventLog

    log = KafkaEventLog(
        kafka_bootstrap, topic_prefix=f"asof-{uuid.uuid4().hex[:10]}", partitions=3,
        idempotent=False,
    )  # fmt: skip
    settings_ = load_settings(tracking_uri=str(tmp_path / "data"), project_inline=True)
    backend = bootstrap(settings_, log=log)
    try:
        world = World(Client(backend=backend))
        seen = []
        for command in KAFKA_HISTORY:
            world.run(command)
            now, runs = now_ms(), list(world.runs)
            seen.append((backend.log.head(), now, runs, answers(world.c, runs)))
            while now_ms() <= now:
                time.sleep(0.001)
        assert len(seen[-1][0].partitions()) > 1  # the history really spans partitions
        assert len(seen[-1][3]["versions"]) == 3 and len(seen[-1][3]["runs"]) == 2
        for checkpoint, moment, runs, live in reversed(seen):
            assert answers(Client(backend=backend, as_of=checkpoint.encode()), runs) == live
            assert answers(Client(backend=backend, as_of=moment), runs) == live
    finally:
        backend.close()


def test_a_webhook_as_of_then_has_its_definition_then_and_todays_deliveries(
    backend: Backend,
) -> None:
    c = Client(backend=backend)
    c.create_webhook("hook", "http://127.0.0.1:9/a", ["model.*"])
    before = backend.log.head()
    c.update_webhook("hook", url="http://127.0.0.1:9/b", events=["run.*"])
    past = Client(backend=backend, as_of=before)
    hook = past.get_webhook("hook")
    assert (hook.url, hook.events) == ("http://127.0.0.1:9/a", ["model.*"])
    assert [h.url for h in past.list_webhooks()] == ["http://127.0.0.1:9/a"]
    assert past.list_webhook_deliveries("hook") == c.list_webhook_deliveries("hook")
    with pytest.raises(InvalidInput, match="read-only"):
        past.update_webhook("hook", active=False)


def test_a_snapshot_is_freed_once_neither_the_cache_nor_a_reader_holds_it(
    backend: Backend, history: tuple[Client, str, Checkpoint, int]
) -> None:
    import gc
    import weakref

    _, run, before, _ = history
    past = backend.as_of(before)
    snapshot = weakref.ref(past.snapshot)
    backend.time_travel.clear()
    gc.collect()
    assert snapshot() is not None  # a reader still holds it, and can still read
    assert past.queries.get_run(run).data.params == {"lr": "0.1"}
    del past
    gc.collect()
    assert snapshot() is None
