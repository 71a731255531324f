"""Request ids the model server makes up: 32 hex digits, never the same twice in a
process, and a forked worker (uvicorn's) does not repeat its parent's."""

from __future__ import annotations

import os
import re

from ledgerflow.services.serving.request_ids import new_request_id


def test_ids_are_32_hex_digits_and_unique() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_child_draws_its_own_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.close(read)
        os.write(write, ",".join(new_request_id() for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split(","))
    os.waitpid(pid, 0)
    ours = {new_request_id() for _ in range(100)}
    assert len(child) == 100 and not child & ours
    assert {i[:16] for i in child} != {i[:16] for i in ours}
