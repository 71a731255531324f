import os
import sqlite3
import subprocess
import textwrap
import threading
import time
from pathlib import Path

from ledgerflow.events.chain import StoredEvent
from ledgerflow.events.log import CorruptRecord, EventLog, TypeMatcher
from ledgerflow.events.notify import Notifier
from ledgerflow.events.sqlite_log import SQLiteEventLog, notify_folder
from ledgerflow.events.verify import verify
from tests.conftest import PYTHON, python_env
from tests.integration.eventlog_contract import EventLogContract, tag_event
from tests.integration.eventlog_tamper_contract import split_document


class TestSQLiteEventLog(EventLogContract):
    def make_log(self, tmp_path: Path) -> EventLog:
        return SQLiteEventLog(tmp_path / "events.db")

    def rewrite(self, log: EventLog, tmp_path: Path, records: list[StoredEvent]) -> EventLog:
        """Rows replaced with plain SQL; the positions the log had, given out in list order."""
        conn = sqlite3.connect(tmp_path / "events.db")
        try:
            with conn:
                conn.execute("DELETE FROM events")
                positions = sorted(r.position for r in records)
                for position, r in zip(positions, records, strict=True):
                    head, data = split_document(r.document)
                    conn.execute(
                        "INSERT INTO events (position, id, type, stream, time, v, actor, trace, "
                        "data, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (position, head["id"], head["type"], head["stream"], head["time"],
                         head["v"], head["actor"], head["trace"], data, r.prev, r.hash),
                    )  # fmt: skip
        finally:
            conn.close()
        return self.reopen(tmp_path)

    def test_an_edit_into_bytes_that_are_not_utf8_is_named_not_a_crash(
        self, log: SQLiteEventLog
    ) -> None:
        recorded = log.append([tag_event("a", i) for i in range(3)])
        conn = sqlite3.connect(log.path)
        with conn:
            conn.execute("UPDATE events SET actor = CAST(X'FF' AS TEXT) WHERE position = 2")
        conn.close()
        report = verify(log)
        assert [(pr.kind, pr.position) for pr in report.problems] == [("altered", 2)]
        assert report.problems[0].id == recorded[1].event.id and report.checked == 3

    def test_a_log_file_from_before_the_chain_gets_its_columns_and_verifies(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "old.db"
        conn = sqlite3.connect(path)
        conn.executescript(
            "CREATE TABLE events (position INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL "
            "UNIQUE, type TEXT NOT NULL, stream TEXT NOT NULL, time INTEGER NOT NULL, v INTEGER "
            "NOT NULL, actor TEXT NOT NULL, trace TEXT, data TEXT NOT NULL);"
            "INSERT INTO events (id, type, stream, time, v, actor, data) VALUES "
            "('old-1', 'run.tags_set', 'run:a', 0, 1, 'x', '{\"run_id\":\"a\",\"tags\":{}}');"
        )
        conn.close()
        log = SQLiteEventLog(path)
        try:
            log.append([tag_event("a", 1)])
            report = verify(log)
            assert report.ok and report.partitions[""].legacy == 1
            assert report.partitions[""].first_chained == 2
            assert next(r.event.id for r in log.read()) == "old-1"  # type: ignore[union-attr]
        finally:
            log.close()

    def test_the_file_is_in_wal_mode_with_full_sync(self, log: SQLiteEventLog):
        conn = sqlite3.connect(log.path)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    def test_an_undecodable_row_comes_back_as_a_corrupt_record(self, log: SQLiteEventLog):
        log.append([tag_event("a", 0)])
        conn = sqlite3.connect(log.path)
        conn.execute(
            "INSERT INTO events (id, type, stream, time, v, actor, data) "
            "VALUES ('bad-1', 'run.tags_set', 'run:a', 0, 1, 'x', '{not json')"
        )
        conn.commit()
        log.append([tag_event("a", 1)])
        items = list(log.read())
        assert isinstance(items[1], CorruptRecord)
        assert items[1].id == "bad-1" and "undecodable" in items[1].reason
        assert not isinstance(items[2], CorruptRecord)

    def test_a_process_has_one_wake_up_socket_however_many_follow_and_none_after(
        self, log: SQLiteEventLog
    ):
        """Appends send one datagram per other following process, not one per follower;
        every follower of this process still wakes on an append."""
        folder = notify_folder(log.path)
        stop = threading.Event()
        woke = [threading.Event() for _ in range(4)]

        def follow(k: int) -> None:
            for _ in log.subscribe("latest", stop=stop, idle_wait=30.0):
                woke[k].set()

        threads = [threading.Thread(target=follow, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        assert len(list(folder.glob(f"{os.getpid()}-*.sock"))) == 1
        log.append([tag_event("a", 1)])
        assert all(w.wait(5) for w in woke)
        stop.set()
        for t in threads:
            t.join(10)
        assert list(folder.glob(f"{os.getpid()}-*.sock")) == []

    def test_a_follower_wakes_when_another_process_appends(self, log: SQLiteEventLog):
        stop = threading.Event()
        arrived: list[float] = []

        def follow() -> None:
            for _ in log.subscribe("latest", stop=stop, idle_wait=30.0):
                arrived.append(time.monotonic())
                stop.set()

        t = threading.Thread(target=follow)
        t.start()
        time.sleep(0.3)
        code = textwrap.dedent(f"""
            from ledgerflow.events.sqlite_log import SQLiteEventLog
            from tests.integration.eventlog_contract import tag_event
            SQLiteEventLog({str(log.path)!r}).append([tag_event("a", 1)])
            import time; print(time.monotonic(), flush=True)
        """)
        out = subprocess.run(
            [PYTHON, "-c", code],
            env=python_env(),
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parents[2],
        )
        t.join(10)
        assert arrived, "the follower never saw the other process's event"
        assert arrived[0] - float(out.stdout) < 5.0

    def test_heads_says_where_the_log_ends_each_time_it_moves(self, log: SQLiteEventLog):
        """What the projector service follows: the head now, then each new head, whoever
        appended, with no wake-up timer needed (idle_wait 30 s)."""
        log.append([tag_event("a", 1)])
        stop = threading.Event()
        seen: list[int] = []
        moved = threading.Event()

        def follow() -> None:
            for head in log.heads(stop=stop, idle_wait=30.0):
                seen.append(head.total())
                if head.total() == 4:
                    moved.set()

        t = threading.Thread(target=follow)
        t.start()
        time.sleep(0.3)
        assert seen == [1]
        log.append([tag_event("a", 2)])
        code = textwrap.dedent(f"""
            from ledgerflow.events.sqlite_log import SQLiteEventLog
            from tests.integration.eventlog_contract import tag_event
            SQLiteEventLog({str(log.path)!r}).append([tag_event("a", 3), tag_event("a", 4)])
        """)
        subprocess.run(
            [PYTHON, "-c", code], env=python_env(), check=True, cwd=Path(__file__).parents[2]
        )
        assert moved.wait(10), f"heads seen: {seen}"
        stop.set()
        t.join(10)
        assert not t.is_alive()
        assert seen[0] == 1 and seen[-1] == 4 and seen == sorted(set(seen))

    def test_a_follower_of_some_types_wakes_for_those_only_unless_another_process_appends(
        self, log: SQLiteEventLog
    ):
        """This process's appends name their types, so a follower of deployments is not
        woken by runs' events; another process's wake-up names none and wakes all."""
        notifier = Notifier(notify_folder(log.path))
        with (
            notifier.listener(TypeMatcher(["deployment.*"])) as deployments,
            notifier.listener() as everything,
        ):
            log.append([tag_event("a", 1)])  # run.tags_set
            assert everything.wait(5.0)
            assert not deployments.wait(0.3)
            notifier.notify({"run.started", "deployment.created"})
            assert deployments.wait(5.0) and everything.wait(5.0)
            code = textwrap.dedent(f"""
                from ledgerflow.events.sqlite_log import SQLiteEventLog
                from tests.integration.eventlog_contract import tag_event
                SQLiteEventLog({str(log.path)!r}).append([tag_event("a", 2)])
            """)
            subprocess.run(
                [PYTHON, "-c", code], env=python_env(), check=True, cwd=Path(__file__).parents[2]
            )
            assert deployments.wait(5.0)
