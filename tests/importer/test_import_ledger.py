"""The import ledger on both state stores (named migrations 006_import_ledger / 004_import_ledger):
a finished object is found again under its scope, by a reopened store, and not under another."""

from __future__ import annotations

import pytest
from pgtest import fresh_schema_url

from connector.state import open_state


@pytest.fixture(params=["sqlite", "postgres"])
def location(request, tmp_path):
    if request.param == "sqlite":
        yield tmp_path / "s.db"
        return
    with fresh_schema_url() as url:
        yield url


def test_finished_objects_are_kept_per_scope_and_survive_a_reopen(location):
    store = open_state(location)
    try:
        assert store.finished_imports(["mapping=v1"]) == set()
        store.put_finished_import("s3://b/sns/a.gz", "mapping=v1", 10)
        store.put_finished_import("s3://b/sns/b.gz", "mapping=v1;event=acme/event/1", 3)
        store.put_finished_import("s3://b/sns/a.gz", "mapping=v1", 11)        # again: no duplicate key error
    finally:
        store.close()
    again = open_state(location)
    try:
        assert again.finished_imports(["mapping=v1"]) == {"s3://b/sns/a.gz"}
        assert again.finished_imports(["mapping=v1;event=acme/event/1", "mapping=v1"]) == \
            {"s3://b/sns/a.gz", "s3://b/sns/b.gz"}
        assert again.finished_imports(["mapping=v2"]) == set()                 # a new mapping reads all again
    finally:
        again.close()
