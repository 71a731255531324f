"""The indexes a replay from zero defers are the views' own: a renamed index would
silently stay in place (and slow the replay) if the list named it the old way."""

from ledgerflow.services.projector import bulk
from ledgerflow.services.projector.tables import METADATA


def test_every_deferred_index_is_an_index_of_the_views() -> None:
    names = {str(i.name) for t in METADATA.sorted_tables for i in t.indexes}
    assert names >= bulk.DEFERRED, sorted(bulk.DEFERRED - names)
    assert {str(i.name) for i in bulk.deferred_indexes()} == bulk.DEFERRED
