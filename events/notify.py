"""Wake-ups for log followers, inside one process and across processes.

Appenders call `notify()` after a commit. Followers in the same process wait on a
condition variable per folder. Each process that follows binds one Unix datagram
socket in a shared folder (its relay), and appenders send one byte to every other
process's socket there; the relay's thread turns it into the same condition wake-up.
An append therefore costs one datagram per *other* following process, not one per
follower: a server with ten followers used to send ten, and each wake-up let a
follower thread take the GIL before the appending request could answer.
Followers still re-check on a slow timer, so a lost wake-up only costs latency.

A follower that reads only some event types says so, and an append of this process wakes
it only when it wrote one of them: in `ledgerflow server` a run's events used to wake the
deployment, alias, bundle-policy and webhook followers too, each to read and skip them.
Another process's append (a relay datagram carries no types) wakes every follower.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import uuid
from collections.abc import Callable, Collection
from pathlib import Path

_listeners: dict[str, set[Listener]] = {}
_relays: dict[str, _Relay] = {}
_lock = threading.Lock()


def _bump(key: str, types: Collection[str] | None = None) -> None:
    """Wake this process's listeners on `key` that follow one of `types` (every one when
    the types are not known)."""
    with _lock:
        listeners = list(_listeners.get(key, ()))
    for listener in listeners:
        if types is None or listener.wants(types):
            listener._woken.set()


class _Relay:
    """This process's socket in a folder, and the thread that wakes this process's
    followers when another process appends. Shared by the process's listeners."""

    def __init__(self, folder: Path, key: str) -> None:
        self.users = 0
        self._closed = threading.Event()
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{os.getpid()}-{uuid.uuid4().hex[:12]}.sock"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._sock.bind(str(self.path))
        except OSError:
            self._sock.close()
            raise
        self._sock.setblocking(False)
        self._key = key
        threading.Thread(target=self._run, name="ledgerflow-notify", daemon=True).start()

    def _run(self) -> None:
        sock = self._sock
        try:
            while not self._closed.is_set():
                ready, _, _ = select.select([sock], [], [], 0.5)
                if ready:
                    with contextlib.suppress(BlockingIOError, OSError):
                        while sock.recv(64):
                            pass
                    _bump(self._key)  # another process: its types are not known
        finally:
            sock.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()  # no more datagrams; the thread closes the socket
        self._closed.set()


def _forget_relays_in_child() -> None:
    """A forked child holds its parent's relays' sockets but not their threads: it
    binds its own on first use, and never unlinks the parent's paths."""
    global _lock
    _lock = threading.Lock()
    _relays.clear()
    _listeners.clear()  # the parent's followers' threads are not in the child


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_relays_in_child)


class Notifier:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._key = str(folder)

    def notify(self, types: Collection[str] | None = None) -> None:
        """After a commit of events of `types` (None: not known): wake the followers."""
        _bump(self._key, types)  # this process's followers
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return
        with _lock:  # this process's own relays are woken by the condition above
            mine = {relay.path.name for relay in _relays.values()}
        others = [name for name in names if name not in mine]
        if not others:
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            for name in others:
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

    def listener(self, wants: Callable[[str], bool] | None = None) -> Listener:
        """A wake-up source for a follower of the types `wants` accepts (None: all)."""
        return Listener(self, wants)


class Listener:
    """One follower's wake-up source. Use as a context manager."""

    def __init__(self, notifier: Notifier, wants: Callable[[str], bool] | None = None) -> None:
        self._key = notifier._key
        self._folder = notifier.folder
        self._wants = wants
        self._woken = threading.Event()
        self._relay: _Relay | None = None

    def wants(self, types: Collection[str]) -> bool:
        return self._wants is None or any(self._wants(t) for t in types)

    def __enter__(self) -> Listener:
        with _lock:
            _listeners.setdefault(self._key, set()).add(self)
            relay = _relays.get(self._key)
            if relay is None:
                try:
                    relay = _relays[self._key] = _Relay(self._folder, self._key)
                except OSError:
                    # Unix sockets unavailable (path too long, odd file system): other
                    # processes' appends are seen on the timer only.
                    relay = None
            if relay is not None:
                relay.users += 1
            self._relay = relay
        return self

    def __exit__(self, *exc: object) -> None:
        with _lock:
            _listeners.get(self._key, set()).discard(self)
            relay, self._relay = self._relay, None
            if relay is not None:
                relay.users -= 1
                if relay.users == 0 and _relays.get(self._key) is relay:
                    del _relays[self._key]
                    relay.close()

    def wait(self, timeout: float) -> bool:
        """Return True as soon as something was appended since the last wait returned
        (here, of a type this listener wants, or in another process), False after
        `timeout` without news. The wake-up is taken before returning, so an append
        committed after that wakes the next wait: read the log after this returns."""
        woke = self._woken.wait(timeout)
        if woke:
            self._woken.clear()
        return woke
