"""The distributed stack under fault: real `ledgerflow` processes on a Kafka-protocol
broker and PostgreSQL, each reached through a TCP proxy the driver can cut.

    SDK load processes -> gateway -> [proxy] -> Tansu broker
                                         projector x2 (one consumer group) -> [proxy] -> PostgreSQL
                                         webhook dispatcher x2 (leases)   -> a receiver here
                                         deployer x2 (leases; statistics from Redis)
    inference load -> replica x2 (`serve --deployment`, one per deployment) -> broker
                                         traffic-stats x2 (Faust, one group) -> [proxy] -> Redis
    SDK load processes, gateway, replica -> [proxy] -> S3 (moto): the artifact store

The broker is a Tansu of this stack's own, advertising the proxy's address, so every
Kafka connection (metadata says where the broker is) goes through the proxy.
PostgreSQL is the machine's: it is never restarted; cutting its proxy is what clients of
a restarting server see. Redis is a server of the stack's own (`servers.RedisServer`),
which the driver may also restart (empty) or flush; every service is given it. The
artifact store is a moto S3 server of the stack's own; clients upload and download
through presigned URLs that point at its proxy.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from sqlalchemy.engine import make_url

from tests.conftest import PYTHON, free_port, python_env
from tests.faults.processes import Service, Supervisor
from tests.faults.proxy import TcpProxy
from tests.faults.schedule import CUT, FLUSH, KILL, RESTART, Fault, Schedule
from tests.faults.servers import RedisServer
from tests.integration.kafka_fixture import tansu
from tests.integration.s3_fixture import start_moto
from tests.integration.s3_fixture import stop as stop_moto

PROJECTORS = 2
DISPATCHERS = 2
DEPLOYERS = 2
TRAFFIC_WORKERS = 2
GROUP = "faults"
DEPLOYMENT = "canary"
"""A canary plan advancing on time alone."""
GUARDED = "guarded"
"""A candidate that always fails beside a sound baseline: its guardrail must roll it back."""
REPLICAS = {"replica-0": DEPLOYMENT, "replica-1": GUARDED}
"""Each deployment's replica (`serve --deployment` serves one)."""
REDIS_RESTART = "redis-server"
REDIS_FLUSH = "redis-keys"


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Stack:
    folder: Path
    kafka: str
    """Where the broker really is (for the checks, which go around the proxies)."""
    views_url: str
    """The views database itself (for the checks)."""
    prefix: str
    env: dict[str, str]
    gateway_url: str
    replica_urls: dict[str, str]
    """Each replica's base URL, by its service name."""
    proxies: dict[str, TcpProxy]
    supervisor: Supervisor
    redis: RedisServer

    @property
    def services(self) -> dict[str, Service]:
        return self.supervisor.services

    def targets(self) -> dict[str, str]:
        """Every fault target and its action."""
        return {
            **{n: KILL for n in self.services},
            **{n: CUT for n in self.proxies},
            REDIS_RESTART: RESTART,
            REDIS_FLUSH: FLUSH,
        }

    def replicas_ready(self) -> bool:
        """Whether the replicas serve: each starts with the stack and waits for its
        deployment (made by the test's set-up) to load and warm its variants."""
        for name in REPLICAS:
            replica = self.services[name]
            if not replica.running():
                raise AssertionError(f"{name} exited while starting:\n{replica.tail()}")
            if replica.ready is None or not replica.ready():
                return False
        return True


def build_stack(
    folder: Path,
    postgres_url: str,
    kafka_port: int,
    proxy: TcpProxy,
    redis: RedisServer,
    s3_url: str,
) -> Stack:
    """The services' settings and processes (not started yet)."""
    from cryptography.fernet import Fernet

    pg = make_url(postgres_url)
    pg_proxy = TcpProxy(pg.port or 5432, pg.host or "127.0.0.1")
    redis_proxy = TcpProxy(redis.port)
    s3 = urlsplit(s3_url)
    s3_proxy = TcpProxy(s3.port or 80, s3.hostname or "127.0.0.1")
    views_via_proxy = pg.set(port=pg_proxy.port).render_as_string(hide_password=False)
    prefix = f"faults-{uuid.uuid4().hex[:10]}"
    env = python_env(folder / "data") | {
        "LEDGERFLOW_EVENT_LOG": f"kafka://{proxy.address}",
        "LEDGERFLOW_VIEWS_DB": views_via_proxy,
        "LEDGERFLOW_KAFKA_TOPIC_PREFIX": prefix,
        "LEDGERFLOW_KAFKA_PARTITIONS": "3",
        "LEDGERFLOW_KAFKA_IDEMPOTENT": "false",  # Tansu has no InitProducerId
        "LEDGERFLOW_SECRET_KEY": Fernet.generate_key().decode(),
        "LEDGERFLOW_REDIS_URL": f"redis://{redis_proxy.address}/0",
        "LEDGERFLOW_ARTIFACTS": f"s3://{prefix}/artifacts",
        "LEDGERFLOW_S3_ENDPOINT": f"http://{s3_proxy.address}",
        "LEDGERFLOW_S3_ACCESS_KEY": "testing",
        "LEDGERFLOW_S3_SECRET_KEY": "testing",
        "PYTHONFAULTHANDLER": "1",  # SIGABRT makes a hung process print every thread's stack
    }
    port = free_port()
    gateway_url = f"http://127.0.0.1:{port}"
    replica_urls = {name: f"http://127.0.0.1:{free_port()}" for name in REPLICAS}
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    cli = [PYTHON, "-m", "ledgerflow.cli"]
    services = [
        Service("gateway", [*cli, "gateway", "--port", str(port)], env, logs / "gateway.log",
                ready=lambda: _healthy(gateway_url)),
        *(Service(f"projector-{i}", [*cli, "projector", "--group", GROUP], env,
                  logs / f"projector-{i}.log") for i in range(PROJECTORS)),
        *(Service(f"dispatcher-{i}",
                  [*cli, "webhooks", "run", "--quiet", "--scan-interval", "0.2", "--lease", "2",
                   "--backoff-base", "0.05", "--backoff-max", "1", "--timeout", "5"],
                  env, logs / f"dispatcher-{i}.log") for i in range(DISPATCHERS)),
        # as a distributed deployment runs them: deciding from the traffic workers'
        # snapshots, one at a time per deployment (the lease), the other standing by
        *(Service(f"deployer-{i}", [*cli, "deployer", "--interval", "0.5", "--lease", "2"],
                  env | {"LEDGERFLOW_TRAFFIC_STATS": "redis"}, logs / f"deployer-{i}.log")
          for i in range(DEPLOYERS)),
        *(Service(name, [*cli, "serve", "--deployment", deployment,
                         "--port", str(urlsplit(replica_urls[name]).port)],
                  env, logs / f"{name}.log", ready=partial(_healthy, replica_urls[name]))
          for name, deployment in REPLICAS.items()),
        *(Service(f"traffic-{i}", [*cli, "traffic-stats", "--session-timeout", "3"],
                  # a Faust data directory of its own
                  env | {"LEDGERFLOW_TRACKING_URI": str(folder / f"traffic-{i}")},
                  logs / f"traffic-{i}.log") for i in range(TRAFFIC_WORKERS)),
    ]  # fmt: skip
    return Stack(
        folder=folder,
        kafka=f"127.0.0.1:{kafka_port}",
        views_url=postgres_url,
        prefix=prefix,
        env=env,
        gateway_url=gateway_url,
        replica_urls=replica_urls,
        proxies={"broker": proxy, "postgres": pg_proxy, "redis": redis_proxy, "s3": s3_proxy},
        supervisor=Supervisor({s.name: s for s in services}),
        redis=redis,
    )


@contextlib.contextmanager
def running_stack(folder: Path, postgres_url: str) -> Iterator[Stack]:
    """Broker, proxies and every service started (the gateway answering); all stopped after."""
    proxy_port = free_port()
    with contextlib.ExitStack() as later:
        redis = RedisServer(folder / "redis.log")
        later.callback(redis.stop)
        redis.start()
        pool = later.enter_context(ThreadPoolExecutor(1))
        moto_started = pool.submit(start_moto, folder / "s3.log")  # while the broker starts

        @later.callback
        def _stop_moto() -> None:
            if moto_started.exception() is None:  # a moto that failed to start is gone
                stop_moto(moto_started.result()[0])

        kafka_port = later.enter_context(tansu(folder / "broker.log", proxy_port))
        s3_url = moto_started.result()[1]
        broker = TcpProxy(kafka_port, port=proxy_port)  # the port the broker advertises
        stack = build_stack(folder, postgres_url, kafka_port, broker, redis, s3_url)
        try:
            gateway = stack.services["gateway"]
            gateway.launch()
            gateway.wait_ready()  # it creates the topics: the others start after it
            for service in stack.services.values():
                if service is not gateway:
                    service.launch()
            stack.supervisor.start()
            yield stack
        finally:
            stack.supervisor.stop()
            for p in stack.proxies.values():
                p.close()


@dataclass
class Driver:
    """Applies a schedule's faults to the stack from a thread, recording what it did."""

    stack: Stack
    schedule: Schedule
    done: list[str] = field(default_factory=list)
    outages: list[tuple[str, float, float]] = field(default_factory=list)
    """(target, begin, end) in wall-clock time, for each fault once it is over."""
    _thread: threading.Thread | None = None
    _cuts: dict[str, int] = field(default_factory=dict)
    _began: dict[Fault, float] = field(default_factory=dict)

    def start(self) -> Driver:
        self._thread = threading.Thread(target=self._run, name="fault-driver", daemon=True)
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise AssertionError(f"the fault driver did not finish in {timeout:g} s")

    def _run(self) -> None:
        start = time.monotonic()
        timeline: list[tuple[float, int, Fault]] = []
        for f in self.schedule.faults:
            timeline += [(f.at_s, 1, f), (f.at_s + f.hold_s, 0, f)]
        for at, begins, fault in sorted(timeline, key=lambda x: (x[0], x[1])):
            time.sleep(max(0.0, start + at - time.monotonic()))
            (self._begin if begins else self._end)(fault)
            when = time.strftime("%H:%M:%S", time.localtime()) + f"{time.time() % 1:.2f}"[1:]
            self.done.append(
                f"{when} t={time.monotonic() - start:6.2f}s {'begin' if begins else 'end  '} "
                f"{fault}"
            )

    def _begin(self, fault: Fault) -> None:
        self._began[fault] = time.time()
        if fault.action == KILL:
            self.stack.supervisor.hold(fault.target)
        elif fault.action == FLUSH:
            if self._cuts.get(REDIS_RESTART):
                self.done.append(f"(no FLUSHALL at {fault}: the Redis is down)")
            else:
                self.stack.redis.flushall()
        else:  # CUT or RESTART: down until the last overlapping one ends
            self._cuts[fault.target] = self._cuts.get(fault.target, 0) + 1
            if fault.action == RESTART:
                self.stack.redis.restart_begin()
            else:
                self.stack.proxies[fault.target].cut()

    def _end(self, fault: Fault) -> None:
        self.outages.append((fault.target, self._began.pop(fault), time.time()))
        if fault.action == KILL:
            self.stack.supervisor.release(fault.target)
        elif fault.action in (CUT, RESTART):
            self._cuts[fault.target] -= 1
            if not self._cuts[fault.target]:
                if fault.action == RESTART:
                    self.stack.redis.start()
                else:
                    self.stack.proxies[fault.target].restore()
