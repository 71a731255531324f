"""The TCP proxy the fault driver cuts: through, cut, restored."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from tests.faults.proxy import TcpProxy


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(1024):
            self.request.sendall(data)


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    p = TcpProxy(server.server_address[1])
    yield p
    p.close()
    server.shutdown()
    server.server_close()


def echo(sock: socket.socket, text: bytes) -> bytes:
    sock.sendall(text)
    return sock.recv(1024)


def answers(proxy: TcpProxy, sock: socket.socket | None = None) -> bool:
    """Whether a round trip through `sock` (or a new connection) comes back."""
    try:
        if sock is None:
            sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        return echo(sock, b"ping") == b"ping" and echo(sock, b"pong") == b"pong"
    except OSError:  # reset, as a dead peer or a cut link answers
        return False


def test_a_cut_resets_open_connections_and_refuses_new_ones_until_restored(proxy: TcpProxy) -> None:
    before = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    assert answers(proxy, before)
    proxy.cut()
    assert not answers(proxy, before)
    assert not answers(proxy)
    proxy.restore()
    assert answers(proxy)
    before.close()


def test_clients_dying_in_the_accept_queue_do_not_stop_the_proxy(proxy: TcpProxy) -> None:
    for _ in range(50):  # connect and reset at once, as a process SIGKILLed while connecting
        s = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    assert answers(proxy)


def test_megabytes_pass_through_in_both_directions_unchanged(proxy: TcpProxy) -> None:
    payload = bytes(range(256)) * (8 << 12)  # 8 MiB, more than the proxy buffers per side
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=30)
    sender = threading.Thread(target=sock.sendall, args=(payload,))
    sender.start()
    got = bytearray()
    while len(got) < len(payload):
        chunk = sock.recv(1 << 16)
        assert chunk, "the proxy closed the connection"
        got += chunk
    sender.join()
    sock.close()
    assert bytes(got) == payload


class Tell(socketserver.BaseRequestHandler):
    """An answer, then the connection closed at once (as an HTTP/1.0 server does)."""

    def handle(self) -> None:
        self.request.recv(1024)
        self.request.sendall(ANSWER)


ANSWER = bytes(range(256)) * (4 << 10)  # 1 MiB: more than a client's socket buffers


def test_an_answer_followed_by_a_close_reaches_a_slow_client_whole() -> None:
    """A clean close is passed on after what was sent before it, not as a reset that
    drops the bytes the proxy still holds for the client (a truncated S3 download)."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Tell)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = TcpProxy(server.server_address[1])
    try:
        sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
        sock.sendall(b"GET")
        time.sleep(0.5)  # the server has answered and closed; the proxy holds the rest
        got = bytearray()
        while chunk := sock.recv(1 << 16):
            got += chunk
        sock.close()
        assert bytes(got) == ANSWER
    finally:
        proxy.close()
        server.shutdown()
        server.server_close()
