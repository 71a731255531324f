"""The read cache: served from memory or Redis, and never stale after a write."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import ledgerflow as lf
from ledgerflow.events import model_commands as mc
from ledgerflow.events import tracking_commands as tc
from ledgerflow.events.log import Item
from ledgerflow.events.settings import load_settings
from ledgerflow.services.bootstrap import Backend, bootstrap
from ledgerflow.services.gateway.cache import ReadCache
from ledgerflow.services.gateway.cache_store import LruStore, RedisStore, Store
from ledgerflow.services.gateway.hub import Hub
from ledgerflow.services.gateway.proto import ledgerflow_pb2 as pb
from tests.integration.gateway_fixture import GatewayThread, running_gateway
from tests.waiting import wait_until


class LaggingHub(Hub):
    """A hub whose live events arrive late, as on a busy gateway: the cache must not
    serve what a write just changed while the invalidation is still on its way."""

    def _dispatch(self, item: Item) -> None:
        time.sleep(0.3)
        super()._dispatch(item)


@pytest.fixture
def hub(backend: Backend) -> Iterator[Hub]:
    hub = LaggingHub(backend.log).start()
    yield hub
    hub.close()


@pytest.fixture
def cache(backend: Backend, hub: Hub) -> Iterator[ReadCache]:
    cache = ReadCache(backend, hub).start()
    yield cache
    cache.close()


def new_run(backend: Backend, name: str = "cache") -> tuple[str, str]:
    exp = backend.tracking.execute(tc.CreateExperiment(name=name), actor="t")
    run = backend.tracking.create_run(exp, user_id="u", actor="t")
    backend.tracking.log_metrics(run.run_id, [("acc", 0.5, 0, 0)], actor="t")
    return exp, run.run_id


def test_a_cached_run_is_read_once_and_a_write_shows_at_once(backend: Backend, cache: ReadCache):
    _, run = new_run(backend)
    queries = cache.queries()
    wait_until(cache.fresh, what="the invalidator to catch up")
    assert queries.get_run(run).data.metrics == {"acc": 0.5}
    assert queries.get_run(run) == backend.queries.get_run(run)
    assert (cache.stats.misses, cache.stats.hits) == (1, 1)

    backend.tracking.log_metrics(run, [("acc", 0.9, 0, 1)], actor="t")
    assert queries.get_run(run).data.metrics == {"acc": 0.9}  # not the cached 0.5
    assert cache.stats.bypassed >= 1  # the invalidation was still in flight

    wait_until(lambda: cache.stats.dropped >= 1, what="the invalidation")
    wait_until(cache.fresh, what="the invalidator to catch up")
    assert queries.get_run(run).data.metrics == {"acc": 0.9}
    hits = cache.stats.hits
    assert queries.get_run(run).data.metrics == {"acc": 0.9}
    assert cache.stats.hits == hits + 1


def test_alias_lookups_are_cached_per_model_and_follow_the_alias(
    backend: Backend, cache: ReadCache
):
    registry = backend.registry
    registry.execute(mc.CreateRegisteredModel(name="clf"), actor="t")
    for n in range(2):
        registry.execute(mc.CreateModelVersion(name="clf", source=f"/models/{n}"), actor="t")
    registry.execute(mc.SetRegisteredModelAlias(name="clf", alias="champion", version=1), actor="t")
    lookups = cache.registry_queries()
    wait_until(cache.fresh, what="the invalidator to catch up")
    assert lookups.get_model_version_by_alias("clf", "champion").version == 1
    assert lookups.get_model_version_by_alias("clf", "champion").version == 1
    assert cache.stats.hits == 1

    registry.execute(mc.SetRegisteredModelAlias(name="clf", alias="champion", version=2), actor="t")
    assert lookups.get_model_version_by_alias("clf", "champion").version == 2
    tag = mc.SetModelVersionTag(name="clf", version=2, key="checked", value="yes")
    registry.execute(tag, actor="t")
    assert lookups.get_model_version_by_alias("clf", "champion").tags == {"checked": "yes"}


def test_deleting_an_experiment_invalidates_its_runs(backend: Backend, cache: ReadCache):
    exp, run = new_run(backend)
    queries = cache.queries()
    wait_until(cache.fresh, what="the invalidator to catch up")
    assert queries.get_run(run).info.lifecycle_stage == "active"
    backend.tracking.execute(tc.DeleteExperiment(experiment_id=exp), actor="t")
    wait_until(lambda: cache.stats.dropped >= 1, what="the invalidation")
    wait_until(cache.fresh, what="the invalidator to catch up")
    assert queries.get_run(run).info.lifecycle_stage == "deleted"


def test_grpc_reads_go_through_the_cache(backend: Backend, hub: Hub, cache: ReadCache):
    _, run = new_run(backend)
    wait_until(cache.fresh, what="the invalidator to catch up")
    with running_gateway(backend, hub, cache=cache) as gw:
        for _ in range(3):
            assert gw.stub.GetRun(pb.GetRunRequest(run_id=run)).data.metrics["acc"] == 0.5
    assert (cache.stats.misses, cache.stats.hits) == (1, 2)


def test_a_second_gateway_sharing_redis_sees_the_first_ones_invalidation(
    data_dir: Path, redis_url: str, redis_prefix: str
):
    first = bootstrap(load_settings(tracking_uri=str(data_dir), redis_url=redis_url))
    second = bootstrap(load_settings(tracking_uri=str(data_dir), redis_url=redis_url))
    hub = Hub(first.log, redis_url=redis_url, prefix=redis_prefix).start()
    invalidating = ReadCache(first, hub, prefix=redis_prefix).start()
    # No hub of its own: it only reads the shared entries (eventually fresh).
    reading = ReadCache(second, None, prefix=redis_prefix).start()
    try:
        _, run = new_run(first)
        wait_until(invalidating.fresh, what="the invalidator to catch up")
        assert invalidating.queries().get_run(run).data.metrics == {"acc": 0.5}
        assert reading.queries().get_run(run).data.metrics == {"acc": 0.5}
        assert reading.stats.hits == 1  # filled by the first gateway

        first.tracking.log_metrics(run, [("acc", 0.7, 0, 1)], actor="t")
        wait_until(
            lambda: reading.queries().get_run(run).data.metrics == {"acc": 0.7},
            what="the second gateway to see the new value",
        )
        assert invalidating.stats.dropped >= 1 and reading.stats.dropped == 0
    finally:
        reading.close()
        invalidating.close()
        hub.close()
        second.close()
        first.close()


def test_a_cache_starting_after_nobody_invalidated_drops_what_redis_holds(
    backend: Backend, redis_url: str, redis_prefix: str
):
    client = redis.Redis.from_url(redis_url)
    stale = RedisStore(client, redis_prefix)
    stale.put("run:x", "run", "{}", stale.ticket("run:x"))
    hub = Hub(backend.log).start()
    cache = ReadCache(backend, hub, redis_url=redis_url, prefix=redis_prefix).start()
    try:
        assert stale.get("run:x", "run") is None
        # A later gateway resumes from the recorded progress instead of clearing.
        stale.put("run:y", "run", "{}", stale.ticket("run:y"))
        again = ReadCache(backend, hub, redis_url=redis_url, prefix=redis_prefix).start()
        assert stale.get("run:y", "run") == "{}"
        again.close()
    finally:
        cache.close()
        hub.close()


@pytest.fixture(params=["lru", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "lru":
        yield LruStore(size=2)
        return
    url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    yield RedisStore(redis.Redis.from_url(url), prefix)


def test_a_fill_that_raced_an_invalidation_is_not_stored(store: Store):
    ticket = store.ticket("run:a")  # a reader starts reading the views...
    store.drop(["run:a"])  # ...an event changes the run meanwhile...
    assert not store.put("run:a", "run", "old", ticket)  # ...so what it read is stale
    assert store.get("run:a", "run") is None
    assert store.put("run:a", "run", "new", store.ticket("run:a"))
    assert store.get("run:a", "run") == "new"
    store.drop(["run:a"])
    assert store.get("run:a", "run") is None


def test_the_in_process_store_evicts_the_least_recently_used():
    store = LruStore(size=2)
    for key in ("a", "b"):
        store.put(key, "f", key, store.ticket(key))
    assert store.get("a", "f") == "a"  # a is now the most recent
    store.put("c", "f", "c", store.ticket("c"))
    assert (store.get("a", "f"), store.get("b", "f"), store.get("c", "f")) == ("a", None, "c")


def test_an_in_process_cache_without_a_hub_is_refused(backend: Backend):
    from ledgerflow.events.errors import InvalidInput

    with pytest.raises(InvalidInput, match="needs a hub"):
        ReadCache(backend, None)


def test_rest_reads_of_runs_versions_and_aliases_go_through_the_cache_and_see_writes(
    gateway: GatewayThread, spool_dir: Path
) -> None:
    """As `ledgerflow gateway` runs: REST reads of a run, a version and an alias are served
    from the cache, and a write shows in the next read (the Client, remote, over REST)."""
    cache = gateway.cache
    assert cache is not None
    client = lf.Client(gateway.url)
    exp = client.create_experiment("cached")
    run = client.create_run(exp).info.run_id
    client.create_registered_model("m")
    client.create_model_version("m", "/models/1")
    client.set_registered_model_alias("m", "live", 1)
    wait_until(cache.fresh, what="the invalidator to catch up")
    hits = misses = 0
    for _ in range(2):  # the first round fills what is not there yet, the second only hits
        hits, misses = cache.stats.hits, cache.stats.misses
        assert client.get_run(run).info.run_id == run
        assert client.get_model_version("m", 1).version == 1
        assert client.get_model_version_by_alias("m", "live").version == 1
    assert cache.stats.misses == misses and cache.stats.hits - hits >= 3

    client.set_tag(run, "k", "v")
    assert client.get_run(run).data.tags["k"] == "v"  # read-your-writes, cache or not
    client.set_model_version_tag("m", 1, "k", "v")
    assert client.get_model_version_by_alias("m", "live").tags == {"k": "v"}
    assert client.get_model_version("m", 1).tags == {"k": "v"}
