"""A TCP proxy the fault driver can cut: a service made unreachable without touching it.

Processes are pointed at the proxy instead of the service (the broker, PostgreSQL).
`cut()` resets every connection through it and answers new ones with a reset until
`restore()`, which is what a network partition or a restarting server looks like from
the clients' side, while the service itself (the machine's PostgreSQL, say) keeps running.

One thread owns every socket (a selector loop); `cut`, `restore` and `close` run on it.
Closing sockets from other threads while one blocks in `recv` lets the kernel hand the
freed descriptor to the next connection, and bytes then go to the wrong peer or nowhere.
"""

from __future__ import annotations

import contextlib
import errno
import queue
import selectors
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.conftest import free_port

_CHUNK = 1 << 16
_BACKLOG_BYTES = 4 << 20
"""Bytes buffered for a peer that is slow to read before the proxy stops reading for it."""


def _reset(sock: socket.socket) -> None:
    """Close with a reset (SO_LINGER 0), as a dead peer or a cut link answers."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


def _close(sock: socket.socket) -> None:
    """Close cleanly: the peer reads what was sent, then the end of the stream."""
    with contextlib.suppress(OSError):
        sock.close()


@dataclass(eq=False)
class _End:
    """One side of a proxied connection: its socket and the bytes waiting to go out on it."""

    sock: socket.socket
    connecting: bool = False
    out: bytearray = field(default_factory=bytearray)
    peer: _End | None = None
    watched: int = 0
    ended: bool = False
    """It closed cleanly: nothing more comes from it; its peer is closed once flushed."""


class TcpProxy:
    def __init__(
        self, upstream_port: int, upstream_host: str = "127.0.0.1", port: int | None = None
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = port or free_port()
        self.cuts = 0
        self._down = False
        self._closed = False
        self._ends: set[_End] = set()
        self._sel = selectors.DefaultSelector()
        self._listener = socket.create_server(("127.0.0.1", self.port), backlog=128)
        self._listener.setblocking(False)
        self._sel.register(self._listener, selectors.EVENT_READ, None)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._calls: queue.SimpleQueue[tuple[Callable[[], None], threading.Event]] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._loop, name=f"proxy-{self.port}", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def is_cut(self) -> bool:
        return self._down

    def cut(self) -> None:
        """Reset every open connection and refuse new ones until `restore()`."""
        self._on_loop(self._cut)

    def restore(self) -> None:
        self._on_loop(self._restore)

    def close(self) -> None:
        if not self._closed:
            self._on_loop(self._close)
            self._thread.join(10)

    # -- on the loop thread -------------------------------------------------------------

    def _on_loop(self, fn: Callable[[], None]) -> None:
        done = threading.Event()
        self._calls.put((fn, done))
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if not done.wait(30):
            raise RuntimeError(f"the proxy on port {self.port} did not answer")

    def _cut(self) -> None:
        self._down = True
        self.cuts += 1
        for end in list(self._ends):
            self._drop(end)

    def _restore(self) -> None:
        self._down = False

    def _close(self) -> None:
        self._cut()
        self._closed = True

    def _loop(self) -> None:
        try:
            while not self._closed:
                for key, mask in self._sel.select(timeout=0.5):
                    if key.fileobj is self._listener:
                        self._accept()
                    elif key.fileobj is self._wake_r:
                        self._run_calls()
                    elif key.data in self._ends:
                        self._io(key.data, mask)
        finally:
            for s in (self._listener, self._wake_r, self._wake_w):
                s.close()
            self._sel.close()

    def _run_calls(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass
        while True:
            try:
                fn, done = self._calls.get_nowait()
            except queue.Empty:
                return
            try:
                fn()
            finally:
                done.set()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. a queued connection reset by its dying client
                continue
            if self._down:
                _reset(client)
                continue
            client.setblocking(False)
            upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            upstream.setblocking(False)
            code = upstream.connect_ex(self.upstream)
            if code not in (0, errno.EINPROGRESS):
                _reset(client)
                _reset(upstream)
                continue
            near, far = _End(client), _End(upstream, connecting=True)
            near.peer, far.peer = far, near
            self._ends |= {near, far}
            self._watch(near)
            self._watch(far)

    def _io(self, end: _End, mask: int) -> None:
        peer = end.peer
        assert peer is not None
        if mask & selectors.EVENT_WRITE:
            if end.connecting:
                if end.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    self._drop(end)  # the upstream refused: so does the proxy
                    return
                end.connecting = False
            if end.out:
                try:
                    sent = end.sock.send(end.out)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError:
                    self._drop(end)
                    return
                del end.out[:sent]
            if not end.out and peer.ended:
                self._finish(end)
                return
        if mask & selectors.EVENT_READ:
            try:
                data = end.sock.recv(_CHUNK)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:  # reset: so is the other side
                self._drop(end)
                return
            if data == b"":  # closed: so is the other side, once it has what came before
                end.ended = True
                if not peer.out:
                    self._finish(end)
                    return
            elif data:
                peer.out += data
        self._watch(end)
        self._watch(peer)

    def _watch(self, end: _End) -> None:
        """Select what `end` waits for: reading while its peer is not too far behind,
        writing while it connects or has bytes to send."""
        peer = end.peer
        assert peer is not None
        events = 0
        if not end.connecting and not end.ended and len(peer.out) < _BACKLOG_BYTES:
            events |= selectors.EVENT_READ
        if end.connecting or end.out:
            events |= selectors.EVENT_WRITE
        if events == end.watched:
            return
        if end.watched and events:
            self._sel.modify(end.sock, events, end)
        elif events:
            self._sel.register(end.sock, events, end)
        else:
            self._sel.unregister(end.sock)
        end.watched = events

    def _drop(self, end: _End) -> None:
        """Reset both sides of `end`'s connection."""
        self._forget(end, _reset)

    def _finish(self, end: _End) -> None:
        """Close both sides of `end`'s connection, one side having closed cleanly and
        everything it sent having been passed on."""
        self._forget(end, _close)

    def _forget(self, end: _End, closing: Callable[[socket.socket], None]) -> None:
        for e in (end, end.peer):
            if e is None or e not in self._ends:
                continue
            self._ends.discard(e)
            if e.watched:
                with contextlib.suppress(KeyError, ValueError):
                    self._sel.unregister(e.sock)
            closing(e.sock)
