"""`GET /api/v1/jobs`, `/jobs/{id}` and `/jobs/{id}/log` (what the UI's Jobs pages read),
and `GET /api/v1/operations/requests`, on a real `ledgerflow server` process with a job run
inline next to it; with auth on, a job is seen by those who may read its experiment."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.e2e.test_jobs_cli import cli
from tests.integration.gateway_fixture import GatewayProcess

API = "/api/v1"
ADMIN = ("admin", "admin-pass-1")


def test_jobs_their_log_from_an_offset_and_the_request_counts(tmp_path: Path) -> None:
    server = GatewayProcess(tmp_path / "data", tmp_path / "server.log", command="server").start()
    try:
        ran = cli(server.data_dir, "train", "echo first; echo second", "--name", "echoes")
        assert ran.returncode == 0, ran.stderr
        http = httpx.Client(base_url=server.url, timeout=30)

        (job,) = http.get(f"{API}/jobs").json()
        assert job["name"] == "echoes" and job["status"] == "FINISHED" and job["run_id"]
        assert http.get(f"{API}/jobs", params={"status": "running"}).json() == []
        assert http.get(f"{API}/jobs/{job['job_id']}").json()["run_id"] == job["run_id"]

        whole = http.get(f"{API}/jobs/{job['job_id']}/log").json()
        assert whole["text"] == "first\nsecond\n" and whole["done"] and whole["offset"] == 13
        rest = http.get(f"{API}/jobs/{job['job_id']}/log", params={"offset": 6}).json()
        assert rest["text"] == "second\n" and rest["offset"] == 13
        assert (
            http.get(f"{API}/jobs/{job['job_id']}/log", params={"offset": 13}).json()["text"] == ""
        )

        r = http.get(f"{API}/jobs/no-such-job")
        assert r.status_code == 404 and "no job 'no-such-job'" in r.json()["message"]
        r = http.get(f"{API}/jobs", params={"status": "sleeping"})
        assert r.status_code == 400 and r.json()["field"] == "status"
        assert "unknown job status 'sleeping'" in r.json()["message"]
        r = http.get(f"{API}/jobs/{job['job_id']}/log", params={"offset": -1})
        assert r.status_code in (400, 422) and "offset" in r.text and "Traceback" not in r.text

        counts = http.get(f"{API}/operations/requests").json()
        seen = {(c["route"], c["method"], c["status"]): c["count"] for c in counts["requests"]}
        assert seen[(f"{API}/jobs/{{job_id}}/log", "GET", "200")] == 3
        assert seen[(f"{API}/jobs/{{job_id}}", "GET", "404")] == 1
        assert counts["time"] > 0
    finally:
        server.stop()


def test_with_auth_on_a_job_is_seen_by_whoever_may_read_its_experiment(tmp_path: Path) -> None:
    server = GatewayProcess(
        tmp_path / "data",
        tmp_path / "server.log",
        command="server",
        extra=("--auth",),
        env={
            "LEDGERFLOW_ADMIN_USER": "admin",
            "LEDGERFLOW_ADMIN_PASSWORD": "admin-pass-1",
            "LEDGERFLOW_AUTH_DEFAULT": "NO_PERMISSIONS",  # READ is granted below
        },
    ).start()
    try:
        ran = cli(server.data_dir, "train", "echo secret work", "--name", "private")
        assert ran.returncode == 0, ran.stderr
        http = httpx.Client(base_url=server.url, timeout=30)
        r = http.post(f"{API}/users", json={"name": "ann", "password": "ann-pass-123"}, auth=ADMIN)
        assert r.status_code in (200, 201), r.text
        ann = ("ann", "ann-pass-123")

        (job,) = http.get(f"{API}/jobs", auth=ADMIN).json()
        assert http.get(f"{API}/jobs", auth=ann).json() == []
        r = http.get(f"{API}/jobs/{job['job_id']}/log", auth=ann)
        assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
        assert http.get(f"{API}/jobs").status_code == 401
        assert http.get(f"{API}/operations/requests", auth=ann).status_code == 403

        grant = f"{API}/permissions/experiment/{job['experiment_id']}/user:ann"
        r = http.put(grant, json={"level": "READ"}, auth=ADMIN)
        assert r.status_code in (200, 204), r.text
        assert [j["job_id"] for j in http.get(f"{API}/jobs", auth=ann).json()] == [job["job_id"]]
        log = http.get(f"{API}/jobs/{job['job_id']}/log", auth=ann).json()
        assert log["text"] == "secret work\n"
    finally:
        server.stop()
