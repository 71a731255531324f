"""Servers of the fault stack's own that the driver may restart or wipe.

The stack's Redis is a `redis-server` of its own on a free port, keeping nothing on disk
(`--save '' --appendonly no`): a restart comes back empty, as a cache or a Redis without
persistence does in production. The machine's shared Redis (6379) is never touched.
Started and stopped by its pid.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis

from tests.conftest import free_port

START_TIMEOUT_S = 30.0


class RedisServer:
    def __init__(self, log: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise AssertionError(
                "the fault suite runs a Redis of its own: install redis-server "
                "(apt-get install redis-server)"
            )
        self.binary = binary
        self.log = log
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self.flushes = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no"]  # fmt: skip
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url, socket_timeout=2)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError(f"redis-server exited with {self.proc.returncode}")
                try:
                    client.ping()
                    return self
                except redis.RedisError:
                    if time.monotonic() > deadline:
                        raise AssertionError(f"redis-server not answering on {self.url}") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: everything it held is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def restart_begin(self) -> None:
        self.restarts += 1
        self.kill()

    def flushall(self) -> None:
        client = redis.Redis.from_url(self.url, socket_timeout=5)
        try:
            client.flushall()
            self.flushes += 1
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
