"""Recording refused requests (`auth.denied`) on the log, rate limited, so a security
review sees who tried and a brute force cannot flood the log.

The limit is per key (the caller and the route: a user for a 403, the client's address
for a 401): at most one recorded refusal per `interval_s`; the refusals in between are
counted and the next recorded one carries the count (`suppressed`). Keys are kept in a
bounded map (the least recently refused dropped first, its count with it), so the
limiter's memory is bounded too. Each gateway process limits on its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from ledgerflow.events.auth_payloads import AuthDenied
from ledgerflow.events.envelope import Event
from ledgerflow.events.errors import LedgerflowError
from ledgerflow.events.log import EventLog

log = logging.getLogger("ledgerflow.auth")

INTERVAL_S = 10.0
MAX_KEYS = 10_000


class DenialLimiter:
    def __init__(
        self,
        interval_s: float = INTERVAL_S,
        max_keys: int = MAX_KEYS,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s = interval_s
        self.max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: OrderedDict[Hashable, list[float]] = OrderedDict()  # [last recorded, count]

    def admit(self, key: Hashable) -> int | None:
        """None: do not record this refusal (it is counted); otherwise record it, with the
        number of refusals of this key not recorded since the last recorded one."""
        with self._lock:
            now = self._clock()
            entry = self._keys.get(key)
            if entry is not None:
                self._keys.move_to_end(key)
                if now - entry[0] < self.interval_s:
                    entry[1] += 1
                    return None
            suppressed = 0 if entry is None else int(entry[1])
            self._keys[key] = [now, 0]
            if len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
            return suppressed


class DenialRecorder:
    def __init__(self, log_: EventLog, limiter: DenialLimiter | None = None) -> None:
        self._log = log_
        self.limiter = limiter or DenialLimiter()

    def record(self, key: Hashable, actor: str, denial: Callable[[int], AuthDenied]) -> bool:
        """Append the refusal `denial(suppressed)` builds, unless the limiter holds it back
        (then `denial` is not even called). Whether it was appended.

        A failure to record is logged (a log that cannot take it as a warning, anything
        else with its traceback), not raised: the request is refused either way, and its
        answer must not turn into a 500."""
        suppressed = self.limiter.admit(key)
        if suppressed is None:
            return False
        try:
            self._log.append([Event.of(denial(suppressed), actor=actor)])
        except LedgerflowError as e:
            log.warning("could not record a refused request on the log: %s", e.message)
            return False
        except Exception:
            log.exception("could not record a refused request on the log")
            return False
        return True
