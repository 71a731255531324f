"""A 200 MB artifact through a gateway on S3: the bytes go straight to the object store.

The gateway hands out presigned URLs; the remote SDK uploads and downloads with them.
The gateway process's own I/O counters show the bytes never passed through it.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PYTHON, python_env
from tests.integration.gateway_fixture import GatewayProcess
from tests.integration.s3_fixture import S3Endpoint

pytestmark = pytest.mark.slow
SIZE = 200 * 1024 * 1024

CLIENT = """
import hashlib, os, sys
from pathlib import Path
import ledgerflow as lf

work = Path(sys.argv[1])
big = work / "big.bin"
digest = hashlib.sha256()
with big.open("wb") as f:
    for _ in range(int(sys.argv[2]) // (4 << 20)):
        chunk = os.urandom(4 << 20)
        digest.update(chunk)
        f.write(chunk)
with lf.start_run() as run:
    lf.log_artifact(str(big), "weights")
got = Path(lf.Client().download_artifacts(run.info.run_id, "weights/big.bin", str(work / "back")))
back = hashlib.sha256()
with got.open("rb") as f:
    while chunk := f.read(4 << 20):
        back.update(chunk)
print(digest.hexdigest(), back.hexdigest(), got.stat().st_size)
"""


def io_bytes(pid: int) -> int:
    """Bytes the process read and wrote through system calls (sockets included)."""
    fields = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return int(fields["rchar"]) + int(fields["wchar"])


@pytest.fixture
def gateway(tmp_path: Path, s3_endpoint: S3Endpoint) -> Iterator[GatewayProcess]:
    env = {
        "LEDGERFLOW_ARTIFACTS": f"s3://big-{uuid.uuid4().hex[:8]}/team",
        "LEDGERFLOW_S3_ENDPOINT": s3_endpoint.url,
        "LEDGERFLOW_S3_ACCESS_KEY": s3_endpoint.access_key,
        "LEDGERFLOW_S3_SECRET_KEY": s3_endpoint.secret_key,
    }
    g = GatewayProcess(tmp_path / "data", tmp_path / "gateway.log", env=env).start()
    yield g
    g.stop()


def test_a_200_mb_artifact_goes_up_and_down_through_presigned_urls_not_the_gateway(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    assert gateway.proc is not None
    before = io_bytes(gateway.proc.pid)
    env = python_env() | {
        "LEDGERFLOW_TRACKING_URI": gateway.url,
        "LEDGERFLOW_SPOOL_DIR": str(tmp_path / "spool"),
    }
    out = subprocess.run(
        [PYTHON, "-c", CLIENT, str(tmp_path), str(SIZE)], env=env,
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    sent, received, size = out.stdout.split()
    assert sent == received and int(size) == SIZE
    moved = io_bytes(gateway.proc.pid) - before
    assert moved < SIZE // 20, f"the gateway moved {moved} bytes: the artifact went through it"
