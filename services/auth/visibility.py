"""Which events a principal may see on a stream, a subscription or a webhook: those on
resources it may READ. Streams name their resource (`run:<id>`, `model:<name>`...), so
deciding costs a cached lookup per event.

Never shown but to admins: identities and grants (`user:`, `group:`, `token:`,
`permission:` streams carry password and token hashes and who may do what) and webhooks
(their events carry signing secrets). Events whose stream names no resource a grant can
be on (jobs and bundles after their first event) are shown only to admins too: when in
doubt, nothing leaks.
"""

from __future__ import annotations

from collections.abc import Callable

from ledgerflow.events.envelope import Event
from ledgerflow.events.permissions import KINDS, Level
from ledgerflow.services.auth.authorize import Authorizer
from ledgerflow.services.auth.principal import Principal
from ledgerflow.services.auth.queries import AuthQueries
from ledgerflow.services.projector.audit_queries import Reader

_KIND_OF_STREAM = {
    "experiment": "experiment",
    "run": "run",
    "model": "model",
    "deployment": "deployment",
    "traffic": "deployment",
}


def resource_of(event: Event) -> tuple[str, str] | None:
    """(kind, key) of the resource whose READ shows `event`; None: admins only."""
    prefix, _, key = event.stream.partition(":")
    kind = _KIND_OF_STREAM.get(prefix)
    if kind == "run":
        experiment = getattr(event.data, "experiment_id", None)  # run.started names it
        if isinstance(experiment, str):
            return "experiment", experiment
    if kind is not None:
        return kind, key
    if prefix in ("job", "logged_model"):  # a logged model's events all name its experiment
        experiment = getattr(event.data, "experiment_id", None)
        return ("experiment", experiment) if isinstance(experiment, str) else None
    if prefix == "bundle":
        model = getattr(event.data, "name", None)
        return ("model", model) if isinstance(model, str) else None
    return None


def visible(authorizer: Authorizer, principal: Principal, event: Event) -> bool:
    if principal.admin:
        return True
    resource = resource_of(event)
    return resource is not None and authorizer.may(principal, *resource, Level.READ)


def audit_reader(authorizer: Authorizer, principal: Principal) -> Reader | None:
    """Which audit entries `principal` sees: all for an admin (None); otherwise those on
    resources they may READ, the grants on resources they MANAGE (as `/permissions`
    shows them), and their own refused requests."""
    if principal.admin:
        return None
    return Reader(
        principal.user,
        read={k: authorizer.readable(principal, k, Level.READ) for k in KINDS},
        manage={k: authorizer.readable(principal, k, Level.MANAGE) for k in KINDS},
    )


def webhook_owner(queries: AuthQueries, webhook: str) -> Principal | None:
    """Whose eyes a webhook delivers through: the user who created it, as they are now
    (admin flag and groups); None when that user is gone (then it delivers nothing)."""
    creators = [
        p.principal for p in queries.permissions("webhook", webhook) if p.source == "creator"
    ]
    if not creators:
        return None
    creds = queries.credentials(creators[0].removeprefix("user:"))
    if creds is None:
        return None
    return Principal(creds.name, creds.admin, creds.groups, method="token")


def webhook_filter(queries: AuthQueries, authorizer: Authorizer) -> Callable[[str, Event], bool]:
    """For the dispatcher with auth on: may the webhook named so deliver this event? Asked
    at delivery time, so revoking the owner's READ stops deliveries from the next event."""

    def may_deliver(webhook: str, event: Event) -> bool:
        owner = webhook_owner(queries, webhook)
        return owner is not None and visible(authorizer, owner, event)

    return may_deliver
