"""An object whose every write comes back with one invalid reference naming the same field is
the org's setup (the run stops, exit 2, messages kept), one such record is that record's."""

from __future__ import annotations

import asyncio

from connector.salesforce.ids import to18
from connector.sync.model import Write
from connector.sync.refusals import WatchedWriter

from .fakes import bad_reference, person, ports, work


def _send(n_refused: int, n_ok: int = 0, explained: tuple[str, ...] = ()):
    p = ports()
    leads = [to18(p.org.insert("Lead", {"LastName": f"L{i}", "Company": "Acme"})) for i in range(n_refused + n_ok)]
    refused = set(leads[:n_refused])
    p.writer.refuse(*bad_reference(lambda w: w.record.get("Id") in refused, "RecordTypeId"))
    watched = WatchedWriter(p.writer)
    writes = [Write("Lead", "update", {"Id": i, "Title": "CTO"}, [work(person(f"p{n}"))], label=f"Lead {i}")
              for n, i in enumerate(leads)]
    asyncio.run(watched.send(writes))
    return watched.refused_alike(explained)


def test_every_write_of_an_object_refused_alike_is_the_orgs_setup():
    refused = _send(2)
    assert list(refused) == ["Lead"] and refused["Lead"].fields == ("RecordTypeId",)


def test_one_record_refused_or_some_written_is_the_records_problem():
    assert _send(1) == {}
    assert _send(2, n_ok=1) == {}


def test_refusals_a_read_explained_are_not_the_orgs_setup():
    assert _send(3, explained=("Lead",)) == {}
