"""List and search routes filter by permission in the query, not after paging: with many
unreadable items interleaved among the readable ones and a page size of 2, every page is
full until the last, the cursor walks through all and only the readable items, and a
capped list (experiments' `max_results`) holds that many readable ones.

The reader's grants exercise each rule: READ and EDIT grants show, a group's grant
shows, the user's own NO_PERMISSIONS hides what their group's READ would show, and no
grant at all (the default NO_PERMISSIONS here) hides. With a default of READ the same
query lists everything but what a grant hides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from ledgerflow.events import auth_commands as ac
from ledgerflow.events import model_commands as mc
from ledgerflow.events import tracking_commands as tc
from ledgerflow.events import webhook_commands as wc
from ledgerflow.events.audit_entities import MAX_RESULTS, AuditQuery
from ledgerflow.events.permissions import Level
from ledgerflow.services.auth.authorize import Authorizer
from ledgerflow.services.auth.principal import Principal
from ledgerflow.services.deployments import commands as dc
from tests.integration.test_auth_gateway import PASSWORD, World, basic, running_world

ADMIN = "admin"
N = 12
KINDS = ("experiment", "model", "deployment", "webhook")
SHOWN = {1: "READ", 4: "EDIT", 9: "MANAGE"}
"""Items granted to the reader themselves."""
BY_GROUP = 6  # the reader's group holds READ on it
HIDDEN_DESPITE_GROUP = 7  # the group holds READ, the reader's own grant NO_PERMISSIONS
READABLE = sorted([*SHOWN, BY_GROUP])


@dataclass
class Listing:
    world: World
    keys: dict[str, list[str]]  # kind -> the key of item i at index i
    http: httpx.Client

    def readable(self, kind: str) -> list[str]:
        return [self.keys[kind][i] for i in READABLE]


def _grant(world: World, kind: str, key: str, principal: str, level: str) -> None:
    command = ac.SetPermission(kind=kind, key=key, principal=principal, level=level)  # type: ignore[arg-type]
    world.backend.auth.execute(command, actor=ADMIN)


@pytest.fixture(scope="module")
def listing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Listing]:
    with running_world(tmp_path_factory.mktemp("auth-listing") / "data") as world:
        b = world.backend
        b.auth.execute(ac.CreateGroup(group="readers"), actor=ADMIN)
        b.auth.execute(ac.AddGroupMember(group="readers", user="reader"), actor=ADMIN)
        b.registry.execute(mc.CreateRegisteredModel(name="base"), actor=ADMIN)
        b.registry.execute(mc.CreateModelVersion(name="base", source="/tmp/m"), actor=ADMIN)
        arms = [{"name": "a", "model": "base", "version": 1, "weight": 1}]
        keys: dict[str, list[str]] = {kind: [] for kind in KINDS}
        for i in range(N):
            name = f"lst-{i:02d}"
            keys["experiment"].append(
                b.tracking.execute(tc.CreateExperiment(name=name), actor=ADMIN)
            )
            b.registry.execute(mc.CreateRegisteredModel(name=name), actor=ADMIN)
            for _ in range(2):
                b.registry.execute(mc.CreateModelVersion(name=name, source="/m"), actor=ADMIN)
            keys["model"].append(name)
            b.deployments.execute(dc.CreateDeployment(name=name, variants=arms), actor=ADMIN)
            keys["deployment"].append(name)
            hook = wc.CreateWebhook(name=name, url="http://127.0.0.1:9/h", events=["model.*"])
            b.webhooks.execute(hook, actor=ADMIN)
            keys["webhook"].append(name)
        for kind in KINDS:
            for i, level in SHOWN.items():
                _grant(world, kind, keys[kind][i], "user:reader", level)
            for i in (BY_GROUP, HIDDEN_DESPITE_GROUP):
                _grant(world, kind, keys[kind][i], "group:readers", "READ")
            _grant(world, kind, keys[kind][HIDDEN_DESPITE_GROUP], "user:reader", "NO_PERMISSIONS")
        with httpx.Client(
            base_url=world.gateway.url + "/api/v1", headers=basic("reader", PASSWORD)
        ) as http:
            yield Listing(world, keys, http)


def walk(fetch: Callable[[str | None], tuple[list[Any], str | None]]) -> list[list[Any]]:
    """Every page, following the tokens."""
    pages, token = [], None
    while True:
        items, token = fetch(token)
        pages.append(items)
        if token is None:
            return pages
        assert len(pages) <= N, "the cursor does not end"


def assert_full(pages: list[list[Any]], size: int = 2) -> None:
    assert all(len(p) == size for p in pages[:-1]), [len(p) for p in pages]
    assert len(pages) == 1 or pages[-1], "an empty last page after a full one"


def test_registered_model_pages_hold_only_and_all_readable_models(listing: Listing) -> None:
    def fetch(token: str | None) -> tuple[list[str], str | None]:
        body = {"filter": "name LIKE 'lst-%'", "max_results": 2, "page_token": token}
        got = listing.http.post("/registered-models/search", json=body)
        assert got.status_code == 200, got.text
        page = got.json()
        return [m["name"] for m in page["registered_models"]], page["next_page_token"]

    pages = walk(fetch)
    assert_full(pages)
    assert sorted(n for p in pages for n in p) == listing.readable("model")


def test_model_version_pages_hold_only_and_all_readable_versions(listing: Listing) -> None:
    def fetch(token: str | None) -> tuple[list[tuple[str, int]], str | None]:
        body = {"filter": "name LIKE 'lst-%'", "max_results": 2, "page_token": token}
        got = listing.http.post("/model-versions/search", json=body)
        assert got.status_code == 200, got.text
        page = got.json()
        versions = [(v["name"], int(v["version"])) for v in page["model_versions"]]
        return versions, page["next_page_token"]

    pages = walk(fetch)
    assert_full(pages)
    found = sorted(v for p in pages for v in p)
    assert found == [(name, v) for name in listing.readable("model") for v in (1, 2)]


def test_an_experiment_search_capped_at_two_holds_the_two_newest_readable(
    listing: Listing,
) -> None:
    got = listing.http.get("/experiments", params={"filter": "name LIKE 'lst-%'", "max_results": 2})
    assert got.status_code == 200, got.text
    newest_first = list(reversed(listing.readable("experiment")))
    assert [e["experiment_id"] for e in got.json()] == newest_first[:2]
    everything = listing.http.get("/experiments", params={"filter": "name LIKE 'lst-%'"})
    assert sorted(e["experiment_id"] for e in everything.json()) == sorted(
        listing.readable("experiment")
    )


@pytest.mark.parametrize("kind", ["deployment", "webhook"])
def test_deployments_and_webhooks_list_only_the_readable_ones(listing: Listing, kind: str) -> None:
    got = listing.http.get(f"/{kind}s")
    assert got.status_code == 200, got.text
    names = sorted(d["name"] for d in got.json() if d["name"].startswith("lst-"))
    assert names == listing.readable(kind)


def test_audit_pages_are_full_and_hold_only_what_the_reader_may_see(listing: Listing) -> None:
    def fetch(token: str | None) -> tuple[list[dict[str, Any]], str | None]:
        params = {"entity": "model:lst-*", "max_results": 2}
        got = listing.http.get("/audit", params=params | ({"page_token": token} if token else {}))
        assert got.status_code == 200, got.text
        page = got.json()
        return page["entries"], page["next_page_token"]

    pages = walk(fetch)
    assert_full(pages)
    entries = [e for p in pages for e in p]
    assert {e["resource"] for e in entries} == {f"model:{k}" for k in listing.readable("model")}
    # the grants on those models show only to who MANAGEs them (lst-09 only)
    grants = {e["stream"] for e in entries if e["stream"].startswith("permission:")}
    assert grants == {f"permission:model:{listing.keys['model'][9]}"}
    admin = listing.world.backend.audit.search(AuditQuery(entity="model:lst-*"), MAX_RESULTS)
    assert admin.token is None  # all of it, for comparison
    expected = [
        e.event_id
        for e in admin
        if e.resource in {f"model:{k}" for k in listing.readable("model")}
        and (not e.stream.startswith("permission:") or e.resource == "model:lst-09")
    ]
    assert [e["event_id"] for e in entries] == expected


def test_with_a_default_of_read_a_query_lists_everything_but_what_a_grant_hides(
    listing: Listing,
) -> None:
    b = listing.world.backend
    lenient = Authorizer(b.auth.queries, Level.READ, lambda _run: None)
    reader = Principal("reader", groups=("readers",))
    shown = lenient.readable(reader, "model")
    assert shown.all_but and shown.keys == {"lst-07"}
    page = b.registry.queries.search_registered_models("name LIKE 'lst-%'", 100, readable=shown)
    assert [m.name for m in page] == [k for k in listing.keys["model"] if k != "lst-07"]
    strict = Authorizer(b.auth.queries, Level.NO_PERMISSIONS, lambda _run: None)
    assert strict.readable(reader, "model", Level.EDIT).keys == {"lst-04", "lst-09"}
