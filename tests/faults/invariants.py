"""What must hold after the faults, checked against the log and the views.

Each check returns the problems it found (empty: it holds), so one run reports
everything that broke, not just the first thing.

- every acknowledged write is in the views exactly once (runs, params, tags, metric
  points, model versions, aliases), and nothing is in them twice;
- the views equal a fresh replay of the log into a new database;
- registry versions are gap-free per model, one per registering call at most;
- an alias points where the last `model.alias_set` of the log says;
- webhooks: every matching event delivered at least once, first deliveries in log order
  (per stream; a one-partition topic is one order), nothing else delivered, every request
  signed, a repeat only of an event delivered before and with the same `webhook-id`;
- no deployment decision taken twice: each canary step advanced once and in order, at
  most one guardrail trip and one rollback or promotion per deployment, and nothing
  decided after a rollback or promotion; the rollback that a candidate failing every
  request demands is taken; a deployment's state in the views is the fold of its stream;
- no dead letters, but for a repeated experiment creation refused because the name is
  taken (a client retrying a create whose outcome it could not know), and a deployment
  decision the fold refused because it was taken on a state that has moved on (two
  deployers, or one whose views lagged: the guard against deciding twice, at work).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from ledgerflow.events.envelope import Event, Recorded
from ledgerflow.events.log import Checkpoint, EventLog, Item, TypeMatcher
from ledgerflow.events.sqlite_log import SQLiteEventLog
from ledgerflow.services.deployments.state import Deployment, InvalidTransition, apply
from ledgerflow.services.projector.database import make_engine
from ledgerflow.services.projector.deployment_tables import DEPLOYMENTS
from ledgerflow.services.projector.projector import Projector
from ledgerflow.services.projector.registry_tables import MODEL_ALIASES, MODEL_VERSIONS
from ledgerflow.services.projector.tables import DEAD_LETTERS, METRIC_POINTS, PARAMS, RUNS, TAGS
from tests.faults import load
from tests.integration.views_dump import dump_views
from tests.integration.webhook_receiver import Request

# -- inputs -------------------------------------------------------------------------------


def read_log(log: EventLog) -> list[Recorded]:
    """Every event on the log, in each partition's order."""
    out: list[Item] = []
    after = Checkpoint()
    while page := list(log.read(after, limit=1000)):
        out += page
        after = after.advance_all(page)
    corrupt = [i for i in out if not isinstance(i, Recorded)]
    if corrupt:
        raise AssertionError(f"the log holds records that do not decode: {corrupt[:3]}")
    return [i for i in out if isinstance(i, Recorded)]


def read_journals(folder: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(folder.glob("*.jsonl"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]


def ops(journal: list[dict[str, Any]], op: str) -> list[dict[str, Any]]:
    return [e for e in journal if e["op"] == op]


# -- the load's writes ----------------------------------------------------------------------


def check_load_ran(journal: list[dict[str, Any]]) -> list[str]:
    problems = [f"a load process crashed in a round:\n{e['error']}" for e in ops(journal, "crash")]
    if not ops(journal, "version"):
        problems.append("the load registered no model version at all: the stack never worked")
    workers = {e["worker"] for e in journal}
    shipped = {e["worker"] for e in ops(journal, "shipped")}
    problems += [f"load worker {w} could not ship its spool at the end" for w in workers - shipped]
    return problems


def distinct(events: Iterable[Recorded]) -> list[Recorded]:
    """Each event id once (a Kafka log may hold an id twice: two handles raced to append
    it; projectors apply it once)."""
    return list({i.event.id: i for i in events}.values())


def check_tracking(
    journal: list[dict[str, Any]], views: Engine, events: list[Recorded]
) -> list[str]:
    """Acknowledged runs and what was logged to them are on the log once and in the views,
    each metric point once."""
    problems: list[str] = []
    # One start per run: a start sent again after a lost answer is the same event (its id
    # is the run's), stored and applied once.
    started = Counter(
        getattr(i.event.data, "run_id", None)
        for i in distinct(events)
        if i.event.type == "run.started"
    )
    for e in ops(journal, "run"):
        if started[e["run_id"]] != 1:
            problems.append(f"acknowledged run {e['run_id']}: started {started[e['run_id']]} times")
    with views.connect() as conn:
        runs = {r.run_id: r for r in conn.execute(select(RUNS))}
        params: dict[str, dict[str, str]] = defaultdict(dict)
        for row in conn.execute(select(PARAMS)):
            params[row.run_id][row.key] = row.value
        tags: dict[str, dict[str, str]] = defaultdict(dict)
        for row in conn.execute(select(TAGS)):
            tags[row.run_id][row.key] = row.value
        points: dict[tuple[str, str], list[tuple[int, float | None]]] = defaultdict(list)
        for row in conn.execute(select(METRIC_POINTS)):
            points[(row.run_id, row.key)].append((row.step, row.value))
    for e in ops(journal, "run"):
        if e["run_id"] not in runs:
            problems.append(f"acknowledged run {e['run_id']} (worker {e['worker']}) is missing")
    rounds = {e["run_id"]: e["round"] for e in ops(journal, "run")}
    for e in ops(journal, "logged"):
        run_id, worker = e["run_id"], e["worker"]
        run = runs.get(run_id)
        if run is None:
            continue  # reported above
        if run.status != "FINISHED" or e["status"] != "FINISHED":
            problems.append(f"run {run_id}: status {run.status} (read back: {e['status']})")
        want = load.params(worker, rounds[run_id])
        if params[run_id] != want:
            problems.append(f"run {run_id}: params {params[run_id]}, logged {want}")
        if tags[run_id].get("round") != str(rounds[run_id]):
            problems.append(f"run {run_id}: tags {tags[run_id]}, logged round={rounds[run_id]}")
        for key, n, value in (("loss", load.STEPS, load.loss), ("acc", load.SINGLES, load.acc)):
            want_points = [(s, value(s)) for s in range(n)]
            got = sorted(points[(run_id, key)])
            if [(s, round(v or 0, 9)) for s, v in got] != [
                (s, round(v, 9)) for s, v in want_points
            ]:
                problems.append(f"run {run_id} {key}: points {got}, logged {want_points}")
    for (run_id, key), got in points.items():  # acknowledged or not: never twice
        doubled = [s for s, n in Counter(s for s, _ in got).items() if n > 1]
        if doubled:
            problems.append(f"run {run_id} {key}: steps {doubled} stored more than once")
    return problems


def check_registry(
    journal: list[dict[str, Any]], views: Engine, events: list[Recorded]
) -> list[str]:
    problems: list[str] = []
    with views.connect() as conn:
        versions = list(conn.execute(select(MODEL_VERSIONS)))
        aliases = {(r.name, r.alias): r.version for r in conn.execute(select(MODEL_ALIASES))}
    by_model: dict[str, list[int]] = defaultdict(list)
    by_run: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for v in versions:
        by_model[v.name].append(v.version)
        if v.run_id:
            by_run[v.run_id].append((v.name, v.version))
    for model, numbers in by_model.items():
        if sorted(numbers) != list(range(1, len(numbers) + 1)):
            problems.append(f"model {model}: versions {sorted(numbers)} are not 1..n")
    for run_id, made in by_run.items():
        if len(made) > 1:
            problems.append(f"run {run_id} was registered {len(made)} times: {made}")
    created = Counter(
        getattr(i.event.data, "run_id", None)
        for i in distinct(events)
        if i.event.type == "model.version_created"
    )
    for e in ops(journal, "version"):
        if (e["model"], e["version"]) not in {(m, v) for m, v in by_run.get(e["run_id"], [])}:
            problems.append(
                f"acknowledged version {e['model']}/{e['version']} of run {e['run_id']} is "
                f"not in the views (they have {by_run.get(e['run_id'])})"
            )
        if created[e["run_id"]] != 1:
            problems.append(
                f"acknowledged version of run {e['run_id']}: {created[e['run_id']]} "
                "model.version_created events on the log"
            )
    last: dict[tuple[str, str], int] = {}
    moves: set[tuple[str, str, int]] = set()
    for i in events:  # the registry topic has one partition: this is its order
        if i.event.type == "model.alias_set":
            data = i.event.data
            last[(data.name, data.alias)] = data.version  # type: ignore[attr-defined]
            moves.add((data.name, data.alias, data.version))  # type: ignore[attr-defined]
    for e in ops(journal, "alias"):
        if (e["model"], e["alias"], e["version"]) not in moves:
            problems.append(f"acknowledged alias move {e} is not on the log")
    if aliases != last:
        problems.append(f"aliases in the views {aliases} differ from the log's last {last}")
    for worker_ops in _by_worker(journal).values():
        tries = [e for e in worker_ops if e["op"] in ("alias", "alias?")]
        if tries and tries[-1]["op"] == "alias":
            e = tries[-1]
            if aliases.get((e["model"], e["alias"])) != e["version"]:
                problems.append(
                    f"alias {e['alias']} was last acknowledged as version {e['version']}, "
                    f"the views say {aliases.get((e['model'], e['alias']))}"
                )
    return problems


def _by_worker(journal: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for e in journal:
        out[e["worker"]].append(e)
    return out


def check_dead_letters(journal: list[dict[str, Any]], views: Engine) -> tuple[list[str], int]:
    """No dead letters, but for the kinds the design expects here: a load process whose
    `create_experiment` ended unknown looks the name up, may find it not projected yet and
    create it again; the projector refuses the second (the name is taken). And a deployment
    decision taken on a state that has moved on, refused by the fold (`check_deployment`
    counts those). Returns the problems and how many refused creations there were."""
    with views.connect() as conn:
        letters = conn.execute(select(DEAD_LETTERS)).all()
    retried = {e["name"] for e in ops(journal, "experiment?")}
    expected = [
        r
        for r in letters
        if r.type == "experiment.created"
        and r.kind == "rejected"
        and any(f"named {name!r} already exists" in r.reason for name in retried)
    ]
    refused = [r for r in letters if r.type in DECISIONS and STALE in r.reason]
    problems = [
        f"dead letter: {r.type} {r.event_id} on {r.stream}: {r.reason}"
        for r in letters
        if r not in expected and r not in refused
    ]
    return problems, len(expected)


# -- views against a fresh replay -----------------------------------------------------------


def replay_dump(events: Iterable[Recorded], folder: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The events copied onto a new SQLite log and folded into new views."""
    local = SQLiteEventLog(folder / "replay-events.db")
    engine = make_engine(f"sqlite:///{folder / 'replay-views.db'}", writer=True)
    try:
        local.append([i.event for i in events])  # an id seen twice is stored once
        Projector(local, engine).rebuild()
        return dump_views(engine)
    finally:
        engine.dispose()
        local.close()


def check_replay(views: Engine, events: list[Recorded], folder: Path) -> list[str]:
    got, fresh = dump_views(views), replay_dump(events, folder)
    problems = []
    for table in sorted(set(got) | set(fresh)):
        a, b = Counter(got.get(table, [])), Counter(fresh.get(table, []))
        if a != b:
            problems.append(
                f"table {table} differs from a fresh replay: only in the views "
                f"{list((a - b).elements())[:5]}, only in the replay {list((b - a).elements())[:5]}"
            )
    return problems


# -- webhooks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HookUnderTest:
    name: str
    patterns: tuple[str, ...]
    start: str | None
    """The cursor it was created with: deliveries begin after it."""

    def expected(self, events: list[Recorded]) -> list[Recorded]:
        """The events it must deliver, each once (the log may hold an id twice)."""
        after = Checkpoint.parse(self.start) if self.start else Checkpoint()
        match = TypeMatcher(self.patterns)
        seen: set[str] = set()
        out = []
        for i in events:
            if match(i.event.type) and not after.includes(i) and i.event.id not in seen:
                seen.add(i.event.id)
                out.append(i)
        return out


def check_webhook(
    hook: HookUnderTest,
    events: list[Recorded],
    requests: list[Request],
    rejected: list[str],
    interruptions: int,
) -> tuple[list[str], int]:
    """Problems, and how many deliveries were repeats. A repeat is the delivery in flight
    when its dispatcher died or lost its database or broker: at most one per such fault
    (`interruptions`)."""
    expected = hook.expected(events)
    problems = [f"webhook {hook.name}: a request failed verification: {r}" for r in rejected]
    taken = [r for r in requests if 200 <= r.status < 300]
    wanted = {i.event.id for i in expected}
    stray = [r.event_id for r in taken if r.event_id not in wanted]
    if stray:
        problems.append(f"webhook {hook.name}: delivered events it should not have: {stray[:5]}")
    missing = wanted - {r.event_id for r in taken}
    if missing:
        problems.append(f"webhook {hook.name}: {len(missing)} events never delivered")
    for r in requests:
        if r.message_id != r.event_id:
            problems.append(f"webhook {hook.name}: webhook-id {r.message_id} for {r.event_id}")
    first: dict[str, int] = {}
    for n, r in enumerate(taken):
        first.setdefault(r.event_id, n)
    where = {i.event.id: i for i in expected}
    streams: dict[str, list[str]] = defaultdict(list)
    for i in expected:
        streams[i.event.stream].append(i.event.id)
    for stream, ids in streams.items():
        delivered = sorted((i for i in ids if i in first), key=first.__getitem__)
        if delivered != [i for i in ids if i in first]:
            problems.append(
                f"webhook {hook.name}: {stream} delivered out of order: "
                f"{[where[i].position for i in delivered]}"
            )
    repeats = len(taken) - len(first)
    if repeats > interruptions:
        problems.append(
            f"webhook {hook.name}: {repeats} repeated deliveries, more than the "
            f"{interruptions} faults that could interrupt a delivery"
        )
    return problems, repeats


# -- deployments ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DeploymentUnderTest:
    name: str
    rolls_back: str | None = None
    """The variant whose guardrail the data trips (it always fails), if any: its
    deployment must be rolled back, once."""


DECISIONS = (
    "deployment.step_advanced",
    "deployment.guardrail_tripped",
    "deployment.rolled_back",
    "deployment.promoted",
)
TERMINAL = ("deployment.rolled_back", "deployment.promoted")
"""Decisions that end a plan: nothing is decided for the deployment after them here."""


def deployment_events(name: str, events: Iterable[Recorded]) -> list[Recorded]:
    """The deployment's stream in its order, each event once (one partition: one order)."""
    return [i for i in distinct(events) if i.event.stream == f"deployment:{name}"]


STALE = "decided on version"
"""How the fold rejects a decision taken on a state that has moved on: the guard that
keeps a deployer from deciding twice, at work (another deployer, or the views behind)."""


def check_deployment(
    dep: DeploymentUnderTest, events: list[Recorded], views: Engine
) -> tuple[list[str], int]:
    """Every decision on the deployment taken once: canary steps advanced in order, each
    once; at most one guardrail trip and one rollback or promotion, and none of them
    again, nor a step, after it; the rollback the data demands taken; and the deployment
    in the views equal to the fold of its stream. A decision is taken when the fold takes
    it: one the fold rejects as decided on a state that has moved on is refused, not
    taken. Returns the problems and how many decisions were refused so."""
    said = f"deployment {dep.name}: "
    state, taken, rejected = fold_stream(deployment_events(dep.name, events))
    problems = [f"{said}{e.type} {e.id} rejected: {why}" for e, why in rejected if STALE not in why]
    refused = len(rejected) - len(problems)
    decisions = [e for e in taken if e.type in DECISIONS]
    steps = [e.data.step for e in decisions if e.type == "deployment.step_advanced"]  # type: ignore[attr-defined]
    if steps != list(range(1, len(steps) + 1)):
        problems.append(f"{said}steps advanced in the order {steps}")
    ended = next((n for n, e in enumerate(decisions) if e.type in TERMINAL), None)
    if ended is not None and ended + 1 < len(decisions):
        after = [e.type for e in decisions[ended + 1 :]]
        problems.append(f"{said}decisions after {decisions[ended].type}: {after}")
    counted = Counter(e.type for e in decisions)
    for kind in ("deployment.guardrail_tripped", *TERMINAL):
        if counted[kind] > 1:
            problems.append(f"{said}{kind} {counted[kind]} times: {_described(decisions, kind)}")
    if dep.rolls_back is None:
        unexpected = [e.type for e in decisions if e.type != "deployment.step_advanced"]
        if unexpected:
            problems.append(f"{said}unexpected decisions {unexpected}")
    else:
        trips = [e.data for e in decisions if e.type == "deployment.guardrail_tripped"]
        if not counted["deployment.guardrail_tripped"] or not counted["deployment.rolled_back"]:
            problems.append(
                f"{said}variant {dep.rolls_back} failed every request, yet the log holds "
                f"{dict(counted)}: no guardrail trip and rollback"
            )
        elif trips[0].variant != dep.rolls_back:  # type: ignore[attr-defined]
            problems.append(f"{said}the guardrail tripped on {trips[0]}, not {dep.rolls_back}")
        if counted["deployment.promoted"]:
            problems.append(f"{said}promoted, with a candidate that always fails")
    with views.connect() as conn:
        row = conn.execute(select(DEPLOYMENTS.c.state).where(DEPLOYMENTS.c.name == dep.name))
        found = row.first()
    seen = None if found is None else json.loads(found.state)
    folded = None if state is None else json.loads(json.dumps(state.to_dict(), sort_keys=True))
    if seen != folded:
        problems.append(f"{said}the views hold {seen}, the fold of its log {folded}")
    return problems, refused


def fold_stream(
    stream: list[Recorded],
) -> tuple[Deployment | None, list[Event], list[tuple[Event, str]]]:
    """A deployment's stream folded as the projector folds it: the state, the events
    taken, and those rejected with the reason (the projector dead-letters them)."""
    state: Deployment | None = None
    taken: list[Event] = []
    rejected: list[tuple[Event, str]] = []
    for i in stream:
        try:
            state = apply(state, i.event.data, i.event.time)
        except InvalidTransition as e:
            rejected.append((i.event, str(e)))
        else:
            taken.append(i.event)
    return state, taken, rejected


def _described(decisions: list[Event], kind: str) -> list[str]:
    return [f"{e.id} at {e.time}: {e.data}" for e in decisions if e.type == kind]


def count(views: Engine, table: Any) -> int:
    with views.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
