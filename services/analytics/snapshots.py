"""Per-deployment traffic aggregates in Redis, where the deployer and the gateway read
what the stream processor (the Faust app) computed.

A deployment's `DeploymentTraffic` (windows included, so readers can ask for statistics
since a time) is stored in chunks, so that neither side handles the whole of it every
time: it grows with every window until the retention compacts it (one to two hours of
one-second windows, 3 MiB of JSON per deployment, which took half a second to encode or
decode; docs/reliability.md, soak). Three keys per deployment, `<prefix><deployment>`:

- the key itself: the head, a small JSON document: when it was published, the window
  length and every variant (with its shadow flag);
- `…:chunks`, a hash: one field per `CHUNK_WINDOWS` consecutive windows (field: the
  chunk's number, the windows' start // (CHUNK_WINDOWS * window)), holding every
  variant's windows in it, and the field `past` with every variant's compacted past;
- `…:versions`, a hash: each chunk's version, `<generation>.<publish>`.

The writer (the one stream worker that owns the deployment's partition) rewrites only
the chunks whose windows changed since its last publish, and all of them, under a new
generation, the first time it publishes a deployment (after a start or a rebalance), in
one MULTI with the head. A reader keeps the chunks it has decoded and their versions;
one script call returns the head, the versions and only the chunks whose version it does
not hold (atomically, so never a mix of two publishes), and the reader assembles the
same `DeploymentTraffic` the writer holds from them. In steady traffic each publish
writes, and each read decodes, the chunk or two that the last second touched, however
long the deployment has run: the statistics are those of the writer's fold, exactly.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from ledgerflow.events.errors import CorruptEvent, Unavailable
from ledgerflow.services.analytics.aggregates import VariantStats
from ledgerflow.services.analytics.series import (
    DeploymentTraffic,
    VariantSeries,
    WindowAggregate,
    variant_stats,
)

KEY_PREFIX = "ledgerflow:traffic:"
CHUNK_WINDOWS = 30
"""Windows per chunk: what a publish rewrites and a read decodes in steady traffic."""
PAST = "past"

_READ = """
local head = redis.call('GET', KEYS[1])
if not head then return {} end
local versions = redis.call('HGETALL', KEYS[3])
local known = {}
for i = 1, #ARGV, 2 do known[ARGV[i]] = ARGV[i + 1] end
local fields = {}
for i = 1, #versions, 2 do
  if known[versions[i]] ~= versions[i + 1] then table.insert(fields, versions[i]) end
end
local chunks = {}
if #fields > 0 then chunks = redis.call('HMGET', KEYS[2], unpack(fields)) end
return {head, versions, fields, chunks}
"""


def snapshot_key(deployment: str, prefix: str = KEY_PREFIX) -> str:
    """The head's key; the chunks and their versions are `…:chunks` and `…:versions`."""
    return f"{prefix}{deployment}"


def snapshot_keys(deployment: str, prefix: str = KEY_PREFIX) -> list[str]:
    """Every key of a deployment's snapshot: head, chunks, versions."""
    head = snapshot_key(deployment, prefix)
    return [head, f"{head}:chunks", f"{head}:versions"]


def chunk_of(start: int | None, window_ms: int) -> str:
    """The chunk holding the window starting at `start` (None: the compacted past)."""
    return PAST if start is None else str(start // (CHUNK_WINDOWS * window_ms))


def encode_head(traffic: DeploymentTraffic, published_ms: int | None = None) -> str:
    doc = {
        "published_ms": published_ms if published_ms is not None else int(time.time() * 1000),
        "window_ms": traffic.window_ms,
        "variants": {name: s.shadow for name, s in sorted(traffic.variants.items())},
    }
    return json.dumps(doc, separators=(",", ":"))


def encode_chunks(
    traffic: DeploymentTraffic, chunks: Collection[str] | None = None
) -> dict[str, str]:
    """The JSON of `chunks` (all when None) as they are now; a chunk with nothing left in
    it (its windows compacted) is absent."""
    out: dict[str, dict[str, Any]] = {}
    window_ms = traffic.window_ms
    span = CHUNK_WINDOWS * window_ms
    for name, series in sorted(traffic.variants.items()):
        if chunks is None or PAST in chunks:
            past = out.setdefault(PAST, {})
            past[name] = {"agg": series.past.to_dict(), "until": series.past_until}
        if chunks is None:
            starts: Iterable[int] = sorted(series.windows)
        else:  # only the chunks asked for: window starts are multiples of window_ms
            numbered = sorted(int(c) for c in chunks if c != PAST)
            starts = (s for c in numbered for s in range(c * span, (c + 1) * span, window_ms))
        for start in starts:
            agg = series.windows.get(start)
            if agg is not None:
                chunk = chunk_of(start, window_ms)
                out.setdefault(chunk, {}).setdefault(name, {})[str(start)] = agg.to_dict()
    return {chunk: json.dumps(doc, separators=(",", ":")) for chunk, doc in out.items()}


@dataclass
class Publication:
    """What one publish writes: chunks to set and to delete, their versions, the head."""

    head: str
    chunks: dict[str, str]
    gone: list[str]
    versions: dict[str, str]
    full: bool


@dataclass
class SnapshotWriter:
    """The writer's side: which chunks it published under which version, so the next
    publish of a deployment rewrites only what changed (`changed`: window starts, None
    for the past). A deployment it has not published yet is written whole, under a new
    generation (a reader then drops every chunk it holds of it)."""

    generations: dict[str, str] = field(default_factory=dict)
    published: dict[str, set[str]] = field(default_factory=dict)
    _count: int = 0

    def forget(self, deployment: str) -> None:
        """Write `deployment` whole next time (its fold was rebuilt, or it moved away)."""
        self.generations.pop(deployment, None)
        self.published.pop(deployment, None)

    def plan(
        self,
        deployment: str,
        traffic: DeploymentTraffic,
        changed: Iterable[int | None] | None,
        published_ms: int | None = None,
    ) -> Publication:
        self._count += 1
        full = changed is None or deployment not in self.generations
        if full:
            self.generations[deployment] = uuid.uuid4().hex[:12]
            self.published[deployment] = set()
        wanted = None if full else {chunk_of(s, traffic.window_ms) for s in changed or ()}
        chunks = encode_chunks(traffic, wanted)
        have = self.published[deployment]
        gone = sorted((have if wanted is None else have & wanted) - set(chunks))
        have.difference_update(gone)
        have.update(chunks)
        version = f"{self.generations[deployment]}.{self._count}"
        return Publication(
            head=encode_head(traffic, published_ms),
            chunks=chunks,
            gone=gone,
            versions=dict.fromkeys(chunks, version),
            full=full,
        )


def _write(pipe: Any, keys: list[str], pub: Publication) -> None:
    """Queue `pub` on a transaction pipeline (sync or asyncio redis-py alike)."""
    head, chunks, versions = keys
    if pub.full:
        pipe.delete(chunks, versions)
    if pub.chunks:
        pipe.hset(chunks, mapping=pub.chunks)
        pipe.hset(versions, mapping=pub.versions)
    if pub.gone:
        pipe.hdel(chunks, *pub.gone)
        pipe.hdel(versions, *pub.gone)
    pipe.set(head, pub.head)


def write_sync(client: redis.Redis, keys: list[str], pub: Publication) -> None:
    pipe = client.pipeline(transaction=True)
    _write(pipe, keys, pub)
    pipe.execute()


async def write_async(client: Any, keys: list[str], pub: Publication) -> None:
    """`client` is a `redis.asyncio.Redis`."""
    async with client.pipeline(transaction=True) as pipe:
        _write(pipe, keys, pub)
        await pipe.execute()


@dataclass
class _Held:
    """What a reader holds of one deployment: decoded chunks by field, their versions,
    and the traffic assembled from them with its head."""

    versions: dict[str, str] = field(default_factory=dict)
    chunks: dict[str, dict[str, Any]] = field(default_factory=dict)
    head_shape: Any = None
    traffic: DeploymentTraffic | None = None
    totals: dict[tuple[str, int | None, bool], tuple[int, Any, WindowAggregate]] = field(
        default_factory=dict
    )
    """Per (variant, since, strict): a chunk K, the versions of the chunks up to K (and
    of the past) it rests on, and the total of those (see `_total`)."""

    def total(self, variant: str, since_ms: int | None, strict: bool) -> WindowAggregate:
        """What `VariantSeries.total` gives, by the same merges in the same order, resumed
        from the total of the chunks before the last two when none of those changed since
        the last such question: the deployer asks the same ones every second, over every
        window since the split last changed."""
        traffic = self.traffic
        series = None if traffic is None else traffic.variants.get(variant)
        if traffic is None or series is None:
            return WindowAggregate()
        window_ms = traffic.window_ms
        first = since_ms if strict or since_ms is None else since_ms - window_ms + 1
        low = None if first is None else first // (CHUNK_WINDOWS * window_ms)
        numbered = sorted(int(c) for c in self.chunks if c != PAST)
        numbered = [c for c in numbered if low is None or c >= low]
        settled = numbered[-3] if len(numbered) >= 3 else None

        def rests_on(upto: int) -> Any:
            chunks = tuple((c, self.versions.get(str(c))) for c in numbered if c <= upto)
            return self.versions.get(PAST), chunks

        key = (variant, since_ms, strict)
        cached = self.totals.get(key)
        done: int | None = None
        if cached is not None and cached[1] == rests_on(cached[0]):
            done, out = cached[0], _copy(cached[2])
        else:
            out = WindowAggregate()
            if since_ms is None or (series.past_until is not None and series.past_until > since_ms):
                out.merge(series.past)
        for c in numbered:
            if done is not None and c <= done:
                continue
            windows = self.chunks[str(c)].get(variant, {})
            for start in sorted(windows):
                if first is None or start >= first:
                    out.merge(windows[start])
            if c == settled:
                if len(self.totals) >= 64:
                    self.totals.clear()
                self.totals[key] = (c, rests_on(c), _copy(out))
        return out


def _copy(agg: WindowAggregate) -> WindowAggregate:
    """An exact copy (counts and bins add to zeros; outcomes are immutable)."""
    out = WindowAggregate()
    out.merge(agg)
    return out


def _decode_chunk(chunk: str, raw: bytes | str) -> dict[str, Any]:
    doc = json.loads(raw)
    if chunk == PAST:
        return {n: (WindowAggregate.from_dict(v["agg"]), v.get("until")) for n, v in doc.items()}
    return {
        n: {int(s): WindowAggregate.from_dict(a) for s, a in windows.items()}
        for n, windows in doc.items()
    }


def _assemble(head: Mapping[str, Any], chunks: Mapping[str, dict[str, Any]]) -> DeploymentTraffic:
    traffic = DeploymentTraffic(window_ms=int(head["window_ms"]))
    for name, shadow in head["variants"].items():
        traffic.variants[name] = VariantSeries(shadow=bool(shadow))
    for chunk, doc in chunks.items():
        _lay(traffic, chunk, doc)
    return traffic


def _lay(traffic: DeploymentTraffic, chunk: str, doc: Mapping[str, Any]) -> None:
    """Put a decoded chunk's windows (or the past) into `traffic`'s series."""
    for name, value in doc.items():
        series = traffic.series(name)
        if chunk == PAST:
            series.past, series.past_until = value
        else:
            series.windows.update(value)


def _patch(
    traffic: DeploymentTraffic,
    before: Mapping[str, dict[str, Any]],
    after: Mapping[str, dict[str, Any]],
    touched: Collection[str],
) -> DeploymentTraffic:
    """`_assemble` of `after`, from `traffic` (assembled from `before`) and the chunks
    `touched` (changed or gone) alone: the work of a read stays that of the chunks read."""
    out = DeploymentTraffic(window_ms=traffic.window_ms)
    for name, s in traffic.variants.items():
        out.variants[name] = VariantSeries(s.shadow, dict(s.windows), s.past, s.past_until)
    for chunk in touched:
        for name, value in before.get(chunk, {}).items():
            series = out.series(name)
            if chunk == PAST:
                series.past, series.past_until = WindowAggregate(), None
            else:
                for start in value:
                    series.windows.pop(start, None)
        _lay(out, chunk, after.get(chunk, {}))
    return out


class RedisTrafficSnapshots:
    """Read (and, for the stream worker, write) deployments' traffic aggregates in Redis.

    A reader keeps what it decoded of each deployment it read, and decodes only chunks
    published since (see the module's docstring). The aggregates it returns are shared
    between calls: treat them as read-only."""

    def __init__(self, client: redis.Redis, *, prefix: str = KEY_PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        self.writer = SnapshotWriter()
        self._held: dict[str, _Held] = {}
        self._read = client.register_script(_READ)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = KEY_PREFIX) -> RedisTrafficSnapshots:
        return cls(redis.Redis.from_url(url, socket_timeout=5), prefix=prefix)

    def publish(
        self,
        deployment: str,
        traffic: DeploymentTraffic,
        changed: Iterable[int | None] | None = None,
    ) -> None:
        """Write `traffic`: the chunks of the `changed` window starts (None for the past),
        or, with `changed` None or on this writer's first publish of it, all of them."""
        pub = self.writer.plan(deployment, traffic, changed)
        try:
            write_sync(self.client, snapshot_keys(deployment, self.prefix), pub)
        except redis.RedisError as e:
            self.writer.forget(deployment)
            raise Unavailable(f"publishing traffic of {deployment!r} to Redis: {e}") from e

    def delete(self, deployment: str) -> None:
        try:
            self.client.delete(*snapshot_keys(deployment, self.prefix))
        except redis.RedisError as e:
            raise Unavailable(f"deleting traffic of {deployment!r} from Redis: {e}") from e
        self.writer.forget(deployment)
        self._held.pop(deployment, None)

    def load(self, deployment: str) -> tuple[DeploymentTraffic, int] | None:
        """The deployment's aggregates and when they were published (epoch ms), if any."""
        held = self._held.get(deployment) or _Held()
        known = [x for pair in held.versions.items() for x in pair]
        try:
            got = self._read(keys=snapshot_keys(deployment, self.prefix), args=known)
        except redis.RedisError as e:
            raise Unavailable(f"reading traffic of {deployment!r} from Redis: {e}") from e
        if not got:
            self._held.pop(deployment, None)
            return None
        raw_head, flat, fields, raws = got
        try:
            head = json.loads(raw_head)
            published_ms = int(head["published_ms"])
            versions = {_text(k): _text(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}
            chunks = {c: held.chunks[c] for c in versions if c in held.chunks}
            for chunk, raw in zip(map(_text, fields), raws, strict=True):
                if raw is None:
                    raise ValueError(f"chunk {chunk} has a version but no value")
                chunks[chunk] = _decode_chunk(chunk, raw)
            traffic = held.traffic
            same = held.head_shape == _shape(head) and held.versions.keys() == versions.keys()
            if traffic is None or held.head_shape != _shape(head):
                traffic = _assemble(head, chunks)
            elif not same or fields:
                touched = {*map(_text, fields), *(held.versions.keys() - versions.keys())}
                traffic = _patch(traffic, held.chunks, chunks, touched)
        except (ValueError, KeyError, TypeError) as e:
            self._held.pop(deployment, None)
            raise CorruptEvent(f"undecodable traffic snapshot of {deployment!r}: {e}") from None
        self._held[deployment] = _Held(versions, chunks, _shape(head), traffic, held.totals)
        return traffic, published_ms

    def snapshot(self, deployment: str, since_ms: int | None = None) -> dict[str, VariantStats]:
        """`DeploymentTraffic.snapshot` of what `load` gives, computed incrementally."""
        found = self.load(deployment)
        held = self._held.get(deployment)
        if found is None or held is None:
            return {}
        return {
            name: variant_stats(name, series.shadow, held.total(name, since_ms, strict=False))
            for name, series in sorted(found[0].variants.items())
        }

    def requests_since(self, deployment: str, variant: str, since_ms: int) -> int:
        """`DeploymentTraffic.requests_since` of what `load` gives, computed incrementally."""
        found = self.load(deployment)
        held = self._held.get(deployment)
        if found is None or held is None:
            return 0
        return held.total(variant, since_ms, strict=True).requests

    def close(self) -> None:
        self.client.close()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _shape(head: Mapping[str, Any]) -> Any:
    """What of a head the assembled traffic depends on (not when it was published)."""
    return (head["window_ms"], head["variants"])
