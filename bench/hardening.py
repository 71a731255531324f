"""What the issue 12 hardening costs on the server, in-process (no network):

- a sign-in attempt: a wrong password (argon2 verification), the same attempt once the
  failed sign-in throttle refuses it (before any check), and a cached valid credential;
- an open stream's credential re-check (StreamGuard.check, once a second per stream);
- opening a webhook's sealed secret (SecretBox.open, once per delivery attempt).

    .venv/bin/python bench/hardening.py            # about 20 s on 2 cores
    .venv/bin/python bench/hardening.py --json out.json

Each figure is the median of 5 rounds of CPU time (process_time) per call.
"""

from __future__ import annotations

import argparse
import base64
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PASSWORD = "bench-password-1"


def per_call_us(fn: Callable[[], Any], n: int, rounds: int = 5) -> float:
    samples = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(n):
            fn()
        samples.append((time.process_time() - start) / n * 1e6)
    return statistics.median(samples)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    from ledgerflow.events import auth_commands as ac
    from ledgerflow.events.errors import RateLimited, Unauthenticated
    from ledgerflow.events.settings import load_settings
    from ledgerflow.services.auth.authenticate import Authenticator
    from ledgerflow.services.bootstrap import bootstrap
    from ledgerflow.services.gateway.stream_guard import StreamGuard

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            tracking_uri=str(Path(tmp) / "data"), auth=True, auth_failures_per_client=0
        )
        backend = bootstrap(settings)
        backend.auth.ensure_admin("admin", "admin-password", actor="bench")
        backend.auth.execute(ac.CreateUser(name="alice", password=PASSWORD), actor="admin")
        open_limit = Authenticator(
            backend.auth.queries, settings.model_copy(update={"auth_failures_per_user": 0})
        )
        throttled = Authenticator(
            backend.auth.queries, settings.model_copy(update={"auth_failures_per_user": 1})
        )
        wrong = basic("alice", "not-the-password")

        def refused(auth: Authenticator, expected: type[Exception]) -> Callable[[], None]:
            def attempt() -> None:
                try:
                    auth.authenticate(wrong, "10.0.0.1")
                except expected:
                    return
                raise AssertionError("the attempt was not refused as expected")

            return attempt

        right = basic("alice", PASSWORD)
        principal = open_limit.authenticate(right)
        guard = StreamGuard(backend, principal, right)
        sealed = backend.secret_box.seal("a-webhook-secret-0123456789")
        results = {
            "wrong password, checked (argon2)": per_call_us(
                refused(open_limit, Unauthenticated), 5
            ),
        }
        refused(throttled, Unauthenticated)()  # empties alice's bucket (one a minute)
        results |= {
            "wrong password, throttled (no check)": per_call_us(
                refused(throttled, RateLimited), 20_000
            ),
            "valid credential, cached": per_call_us(lambda: open_limit.authenticate(right), 20_000),
            "stream re-check (per stream, per second)": per_call_us(guard.check, 2_000),
            "webhook secret opened (per delivery)": per_call_us(
                lambda: backend.secret_box.open(sealed, what="webhook 'b'"), 20_000
            ),
        }
        backend.close()
    width = max(map(len, results))
    print(f"{'operation':<{width}}  CPU µs per call (median of 5 rounds)")
    for name, us in results.items():
        print(f"{name:<{width}}  {us:10.1f}")
    if args.json:
        doc = {"python": platform.python_version(), "machine": platform.machine(), **results}
        args.json.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
