"""Joining outcomes to the variant that served their request, one deployment at a time.

Feedback names the request it is about, and the variant when whoever recorded it knew
(a replica that served the request does; the gateway knows what the caller says). For a
deployment's recent requests (a bounded FIFO, `max_requests`) a `FeedbackJoin` keeps the
variant its inference record names, the metrics already counted for it (a client that
retries counts once), and feedback that came before its inference (replicas flush in
batches) while it waits, for at most `max_pending` requests. Feedback that falls out
unjoined is counted in `unjoined`, never silently dropped from the books.

The bounds are per deployment and each entry keeps its place in the eviction order, so
the join is a function of the deployment's own events in their order: it joins the same
way whichever other deployments share a fold and wherever a restart cut the stream.
`drain` gives the entries changed since it was last called, as JSON, and `load` rebuilds
the join from them: that is how the Faust worker keeps it in its table (`table_fold`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ledgerflow.events.deployment_payloads import FeedbackRecorded

Entry = dict[str, Any]
"""One request's join state as JSON (`drain`, `load`)."""


@dataclass(slots=True)
class _Request:
    seq: int
    """Place in the FIFO of requests."""
    variant: str | None = None
    judged: set[str] = field(default_factory=set)
    waiting: list[FeedbackRecorded] = field(default_factory=list)
    waiting_since: int | None = None
    """Place in the FIFO of requests with waiting feedback."""

    def empty(self) -> bool:
        return self.variant is None and not self.judged and not self.waiting

    def to_entry(self) -> Entry:
        return {
            "seq": self.seq,
            "variant": self.variant,
            "judged": sorted(self.judged),
            "waiting": [fb.model_dump(mode="json") for fb in self.waiting],
            "waiting_since": self.waiting_since,
        }

    @classmethod
    def from_entry(cls, doc: Mapping[str, Any]) -> _Request:
        return cls(
            seq=int(doc["seq"]),
            variant=doc.get("variant"),
            judged=set(doc.get("judged", ())),
            waiting=[FeedbackRecorded.model_validate(fb) for fb in doc.get("waiting", ())],
            waiting_since=doc.get("waiting_since"),
        )


class FeedbackJoin:
    def __init__(self, *, max_requests: int = 100_000, max_pending: int = 10_000) -> None:
        self.max_requests = max_requests
        self.max_pending = max_pending
        self._requests: OrderedDict[str, _Request] = OrderedDict()
        self._waiting: OrderedDict[str, None] = OrderedDict()
        """Requests with feedback waiting for their inference, the longest waiting first."""
        self._seq = 0
        self._pending = 0
        self._dirty: set[str] = set()
        self.unjoined = 0
        """Feedback dropped because its request was not seen within the bounds."""
        self.duplicates = 0
        """Outcomes not counted because one of the same request and metric was."""

    @property
    def pending(self) -> int:
        """Feedback waiting for the inference it is about."""
        return self._pending

    def served(self, request_id: str, variant: str) -> list[FeedbackRecorded]:
        """Note that `variant` served the request; returns the feedback that waited for it."""
        req = self._request(request_id)
        req.variant = variant
        waited, req.waiting, req.waiting_since = req.waiting, [], None
        self._waiting.pop(request_id, None)
        self._pending -= len(waited)
        return waited

    def variant_of(self, feedback: FeedbackRecorded) -> str | None:
        """The variant the feedback names, else the one that served its request, if known."""
        if feedback.variant is not None:
            return feedback.variant
        req = self._requests.get(feedback.request_id)
        return None if req is None else req.variant

    def wait(self, feedback: FeedbackRecorded) -> None:
        """Hold feedback about a request not seen yet until its inference arrives."""
        req = self._request(feedback.request_id)
        req.waiting.append(feedback)
        self._pending += 1
        if req.waiting_since is None:
            req.waiting_since = self._next()
            self._waiting[feedback.request_id] = None
        while len(self._waiting) > self.max_pending:
            oldest, _ = self._waiting.popitem(last=False)
            self._give_up(oldest)

    def first_outcome(self, feedback: FeedbackRecorded) -> bool:
        """True the first time an outcome of this request and metric arrives."""
        req = self._request(feedback.request_id)
        if feedback.metric in req.judged:
            self.duplicates += 1
            return False
        req.judged.add(feedback.metric)
        return True

    def drain(self) -> list[tuple[str, Entry | None]]:
        """The requests changed since the last drain: (request id, entry, or None when the
        request left the join)."""
        out = [(rid, self._entry(rid)) for rid in sorted(self._dirty)]
        self._dirty.clear()
        return out

    def load(self, entries: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Rebuild the join, in its order, from the entries `drain` gave (into an empty one)."""
        loaded = sorted(
            ((rid, _Request.from_entry(doc)) for rid, doc in entries), key=lambda e: e[1].seq
        )
        self._requests.update(loaded)
        waiting = sorted((r.waiting_since, rid) for rid, r in loaded if r.waiting_since is not None)
        self._waiting.update((rid, None) for _, rid in waiting)
        self._pending = sum(len(self._requests[rid].waiting) for rid in self._waiting)
        seqs = [r.seq for _, r in loaded] + [since for since, _ in waiting]
        self._seq = max([self._seq - 1, *seqs]) + 1

    def _entry(self, request_id: str) -> Entry | None:
        req = self._requests.get(request_id)
        return None if req is None else req.to_entry()

    def _next(self) -> int:
        self._seq += 1
        return self._seq - 1

    def _request(self, request_id: str) -> _Request:
        self._dirty.add(request_id)
        req = self._requests.get(request_id)
        if req is None:
            req = self._requests[request_id] = _Request(seq=self._next())
            while len(self._requests) > self.max_requests:
                old_id, old = self._requests.popitem(last=False)
                self._dirty.add(old_id)
                self._waiting.pop(old_id, None)
                self.unjoined += len(old.waiting)
                self._pending -= len(old.waiting)
        return req

    def _give_up(self, request_id: str) -> None:
        req = self._requests[request_id]
        self.unjoined += len(req.waiting)
        self._pending -= len(req.waiting)
        req.waiting, req.waiting_since = [], None
        self._dirty.add(request_id)
        if req.empty():
            del self._requests[request_id]
