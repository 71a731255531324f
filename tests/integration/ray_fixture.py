"""One local Ray for the whole test session (starting Ray takes seconds).

Ray must be installed (it is in the test extras); a missing Ray fails the tests
that need it rather than skipping them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledgerflow.workers.runtime import RayRuntime


@pytest.fixture(scope="session")
def ray_runtime() -> Iterator[RayRuntime]:
    try:
        import ray  # noqa: F401
    except ImportError:
        pytest.fail("Ray is not installed: pip install -e '.[test]' (it brings ray[train])")
    runtime = RayRuntime("local", num_cpus=2)
    runtime.start()
    yield runtime
    runtime.shutdown()
