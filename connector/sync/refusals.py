"""The stages' writer, watched for an org that refuses a whole object alike.

INVALID_CROSS_REFERENCE_KEY naming a field (`"fields":["RecordTypeId"]`: a record type or owner
the integration user may not use) is one record's problem when one record fails so; when every
write of an object in a batch fails with the same field, it is the org's setup and no message's
data (issue #16): the engine stops the run as for any mapping the org refuses (exit 2, messages
kept), instead of quarantining the backlog message by message. The writer's own `org_refusals`
covers the ORG_SETUP codes; this covers the invalid references it leaves to the record.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from connector.salesforce.results import RowAction, WriteError
from connector.sync.model import Write
from connector.sync.stage import RecordWriter


class WatchedWriter:
    """A RecordWriter that remembers what it sent this batch (a Write's error is its final one:
    a stage that re-sends a write, after following a merge, clears it)."""

    def __init__(self, writer: RecordWriter) -> None:
        self.writer = writer
        self.sent: dict[int, Write] = {}

    async def send(self, writes: list[Write], ext_field: str | None = None, serial: bool = False) -> None:
        await self.writer.send(writes, ext_field, serial)
        self.sent.update((id(w), w) for w in writes)

    async def delete(self, ids: Sequence[str]) -> None:
        await self.writer.delete(ids)

    async def send_together(self, groups: list[Any]) -> list[Write] | None:
        answered = await self.writer.send_together(groups)
        if answered is not None:
            self.sent.update((id(w), w) for g in groups if not g.dependent for w in g.writes)
            self.sent.update((id(w), w) for w in answered)
        return answered

    def refused_alike(self, explained: Iterable[str] = ()) -> dict[str, WriteError]:
        """Objects whose every write (two or more) came back with the same invalid reference
        naming the same field, unless a read explained the refusals (records deleted, merged)."""
        skip = set(explained)
        by_object: dict[str, list[Write]] = defaultdict(list)
        for w in self.sent.values():
            if w.sobject not in skip:
                by_object[w.sobject].append(w)
        out: dict[str, WriteError] = {}
        for sobject, writes in by_object.items():
            first = writes[0].error
            if len(writes) < 2 or first is None \
                    or first.action is not RowAction.BAD_REFERENCE or not first.fields:
                continue
            if all(w.error is not None and (w.error.action, w.error.code, w.error.fields)
                   == (first.action, first.code, first.fields) for w in writes):
                out[sobject] = first
        return out
