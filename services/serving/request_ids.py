"""Ids for requests that come without one (REST's X-Request-Id, OIP's `id`): what the
inference record and its feedback join on.

32 hex digits, as a `uuid4().hex` was: a random half drawn once per process (again in a
forked child, as uvicorn's workers are) and a counter. A fresh `uuid4` read the kernel's
random source and built a `UUID` for every request, a few percent of a batched gRPC
call's time; ids stay unique across processes and restarts by their random half.
"""

from __future__ import annotations

import itertools
import os

_prefix = ""
_counter = itertools.count()


def _reseed() -> None:
    global _prefix, _counter
    _prefix = os.urandom(8).hex()
    _counter = itertools.count()


_reseed()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)


def new_request_id() -> str:
    return f"{_prefix}{next(_counter) & 0xFFFF_FFFF_FFFF_FFFF:016x}"
