"""Wake-ups for log followers, inside one process and across processes.

Appenders call `notify()` after a commit. Followers in the same process wait on
a condition variable; followers in other processes each bind a Unix datagram
socket in a shared folder, and appenders send one byte to every socket there.
Followers still re-check on a slow timer, so a lost wake-up only costs latency.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import uuid
from pathlib import Path

_conditions: dict[str, threading.Condition] = {}
_lock = threading.Lock()


def _condition(key: str) -> threading.Condition:
    with _lock:
        return _conditions.setdefault(key, threading.Condition())


class Notifier:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._key = str(folder)
        self._cond = _condition(self._key)
        self._generation = 0

    def notify(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return
        if not names:
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            for name in names:
                path = self.folder / name
                try:
                    sock.sendto(b"!", str(path))
                except (ConnectionRefusedError, FileNotFoundError):
                    with contextlib.suppress(OSError):
                        path.unlink()  # a follower that died without cleaning up
                except (BlockingIOError, OSError):
                    pass  # its queue is full: it has a wake-up pending already
        finally:
            sock.close()

    def listener(self) -> Listener:
        return Listener(self)


class Listener:
    """One follower's wake-up source. Use as a context manager."""

    def __init__(self, notifier: Notifier) -> None:
        self._n = notifier
        self._sock: socket.socket | None = None
        self._path: Path | None = None
        self._seen = notifier._generation

    def __enter__(self) -> Listener:
        try:
            self._n.folder.mkdir(parents=True, exist_ok=True)
            path = self._n.folder / f"{os.getpid()}-{uuid.uuid4().hex[:12]}.sock"
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(str(path))
            sock.setblocking(False)
            self._sock, self._path = sock, path
        except OSError:
            # Unix sockets unavailable (path too long, odd file system): timer only.
            self._sock = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sock is not None:
            self._sock.close()
        if self._path is not None:
            with contextlib.suppress(OSError):
                self._path.unlink()

    def wait(self, timeout: float) -> bool:
        """Return True as soon as something was appended (here or in another process),
        False after `timeout` without news."""
        cond = self._n._cond
        with cond:
            if self._n._generation != self._seen:
                self._seen = self._n._generation
                return True
        if self._sock is None:
            with cond:
                woke = cond.wait_for(lambda: self._n._generation != self._seen, timeout)
                self._seen = self._n._generation
            return woke
        # Wait on the socket, but let in-process appends (which also write to the
        # socket, since it is in the folder) wake us the same way.
        ready, _, _ = select.select([self._sock], [], [], timeout)
        if ready:
            with contextlib.suppress(BlockingIOError, OSError):
                while self._sock.recv(64):
                    pass
        with cond:
            self._seen = self._n._generation
        return bool(ready)
