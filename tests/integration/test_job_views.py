"""The jobs view folds the same from any `job.*` sequence, incrementally or replayed,
and a job ends at most once whatever order its events arrive in."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ledgerflow.events import job_payloads as j
from ledgerflow.events.envelope import Event
from ledgerflow.events.settings import load_settings
from ledgerflow.services.bootstrap import bootstrap
from ledgerflow.services.projector.job_tables import JOBS as J
from tests.integration.test_projection_replay import snapshot

IDS = ["j0", "j1"]
job_id = st.sampled_from(IDS)


def submitted(i: str, kind: j.JobKind) -> j.JobSubmitted:
    return j.JobSubmitted(
        job_id=i, name="n", kind=kind, entry_point="python t.py", params={"lr": "0.1"},
        experiment_id="0", run_id=f"run-{i}", runtime="local",
    )  # fmt: skip


payload = st.one_of(
    st.builds(submitted, job_id, st.sampled_from(["command", "function", "distributed"])),
    st.builds(lambda i: j.JobStarted(job_id=i, host="h", log_path="/l"), job_id),
    st.builds(lambda i: j.JobFinished(job_id=i, log_tail="ok"), job_id),
    st.builds(lambda i: j.JobFailed(job_id=i, error="exit status 1", log_tail="t"), job_id),
    st.builds(lambda i: j.JobCancelled(job_id=i, reason="r"), job_id),
)
ENDS = {"job.finished": "FINISHED", "job.failed": "FAILED", "job.cancelled": "CANCELLED"}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(payload, max_size=20))
def test_job_views_replay_identically_and_the_first_end_in_the_log_wins(seq):
    with tempfile.TemporaryDirectory() as tmp:
        b = bootstrap(load_settings(tracking_uri=str(Path(tmp) / "data")))
        try:
            for item in seq:
                b.log.append([Event.of(item, actor="test")])
                b.projector.catch_up()
            incremental = snapshot(b)
            with b.projector.engine.connect() as conn:
                rows = {r.job_id: r for r in conn.execute(select(J)).all()}
            for jid in IDS:
                events = [e for e in seq if e.job_id == jid]
                submitted = [k for k, e in enumerate(events) if isinstance(e, j.JobSubmitted)]
                if not submitted:
                    assert jid not in rows
                    continue
                later = [e.TYPE for e in events[submitted[0] + 1 :] if e.TYPE in ENDS]
                expected = ENDS[later[0]] if later else rows[jid].status
                assert rows[jid].status == expected
                if not later:
                    assert rows[jid].status in ("SUBMITTED", "RUNNING")
            b.projector.rebuild()
            assert snapshot(b) == incremental
        finally:
            b.close()
