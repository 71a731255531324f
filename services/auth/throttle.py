"""Failed sign-ins, throttled per user name and per client address, before any check.

A password guess costs the server an argon2 verification (tens of milliseconds of CPU),
so a brute force is also a denial of service. Each failed attempt takes one token from
the bucket of the user name it gave and one from the bucket of the address it came from;
an empty bucket refuses the next attempt with `RateLimited` (429 with `Retry-After`,
gRPC RESOURCE_EXHAUSTED) *before* the credential is looked at, so throttled guesses cost
nothing. Successful sign-ins take no token, and a credential already verified is answered
from the authenticator's cache without coming here: a signed-in client keeps working
while someone guesses its user's password.

The buckets live in the process: each gateway (and model server) throttles on its own,
so N gateways behind a load balancer allow N times the rate.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from ledgerflow.events.errors import RateLimited

MAX_KEYS = 100_000


class FailureBuckets:
    """Token buckets of failures: `per_minute` tokens a minute, at most `per_minute` held.
    A key not seen for a while is full again; the least recently failed keys are
    forgotten first beyond `max_keys`."""

    def __init__(
        self,
        per_minute: float,
        *,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    def _tokens(self, key: Hashable, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.per_minute, now))
        return min(self.per_minute, tokens + (now - last) * self._rate)

    def wait_s(self, key: Hashable) -> float:
        """0 when `key` may try again now, else the seconds until it may."""
        if self.per_minute <= 0:
            return 0.0
        with self._lock:
            tokens = self._tokens(key, self._clock())
        return 0.0 if tokens >= 1 else (1 - tokens) / self._rate

    def failed(self, key: Hashable) -> None:
        if self.per_minute <= 0:
            return
        with self._lock:
            now = self._clock()
            self._buckets[key] = (max(0.0, self._tokens(key, now) - 1), now)
            self._buckets.move_to_end(key)
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)


class LoginThrottle:
    """Failed sign-ins per user name (`per_user` a minute) and per client address
    (`per_client` a minute); 0 turns either off."""

    def __init__(
        self, per_user: float, per_client: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.users = FailureBuckets(per_user, clock=clock)
        self.clients = FailureBuckets(per_client, clock=clock)

    def check(self, user: str | None, client: str | None) -> None:
        """Raise RateLimited if the name or the address failed too often lately."""
        waits = []
        if user is not None:
            waits.append((self.users.wait_s(user), f"user name {user!r}"))
        if client is not None:
            waits.append((self.clients.wait_s(client), f"address {client}"))
        wait, who = max(waits, default=(0.0, ""))
        if wait > 0:
            raise RateLimited(
                f"too many failed sign-ins for {who}; retry in {math.ceil(wait)} s "
                "(failed attempts are throttled per user name and per address)",
                retry_after_s=wait,
            )

    def failed(self, user: str | None, client: str | None) -> None:
        if user is not None:
            self.users.failed(user)
        if client is not None:
            self.clients.failed(client)
