"""Fakes for the unit tier: a stage's three ports without HTTPS, queues or a database.

- :class:`OrgReader` / :class:`OrgWriter`: the emulator's org *in this process* (its SOQL engine,
  validation, merges and deletes: the same rules the HTTPS emulator answers with), reached through
  the stage's Reader and RecordWriter ports. The writer can be told to refuse chosen records with a
  chosen error (a private record, an invalid reference...), as an org's sharing or setup would.
- :class:`MemoryState`: the state store's read side as plain dicts (what earlier batches applied).
- :func:`run_stage`: one stage's ``run(works, facts)`` → its StageResult.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from jbtest import sample

from connector.mapping import MappingSet, load_mapping_set
from connector.payloads import Message, SourcePolicy, parse_body
from connector.salesforce.ids import to18
from connector.salesforce.results import RowAction, WriteError
from connector.sync.changes import Facts
from connector.sync.model import Inbound, Work, Write
from connector.sync.stage import Stage, StageContext, StageResult
from connector_devkit.emulator.org import Org, RecordError

COMPOSITE_QUERY_LIMIT = 5


@functools.cache
def mappings() -> MappingSet:
    """The shipped mappings, compiled once."""
    return load_mapping_set()


class OrgReader:
    """Reads as the gateway answers them; `calls` counts API calls (five queries to a composite)."""

    def __init__(self, org: Org) -> None:
        self.org = org
        self.calls = 0
        self.queries: list[tuple[str, bool]] = []   # (SOQL, through queryAll)

    async def query_many(self, soqls: Sequence[str], include_deleted: bool = False) -> list[list[dict[str, Any]]]:
        self.calls += -(-len(soqls) // COMPOSITE_QUERY_LIMIT)
        out = []
        with self.org.lock:
            for q in soqls:
                self.queries.append((q, include_deleted))
                compiled, rows = self.org.run_query(q, include_deleted)
                out.append([{f: r.get(f) for f in compiled.fields} for r in rows])
        return out


Refusal = Callable[[Write], WriteError | None]


class OrgWriter:
    """Writes into the in-process org, record by record; `refusals` answer first (a private record,
    a record type the user may not use...)."""

    def __init__(self, org: Org) -> None:
        self.org = org
        self.sent: list[Write] = []
        self.deleted: list[str] = []
        self.refusals: list[Refusal] = []

    def refuse(self, when: Callable[[Write], bool], error: WriteError) -> None:
        self.refusals.append(lambda w: error if when(w) else None)

    async def send(self, writes: list[Write], ext_field: str | None = None, serial: bool = False) -> None:
        for w in writes:
            self.sent.append(w)
            refused = next((e for r in self.refusals if (e := r(w)) is not None), None)
            if refused is not None:
                w.error = refused
                continue
            try:
                with self.org.lock:
                    if w.op == "upsert":
                        assert ext_field
                        rid, created = self.org.upsert(w.sobject, ext_field, dict(w.record))
                    elif w.op == "update":
                        fields = {k: v for k, v in w.record.items() if k != "Id"}
                        rid, created = self.org.update_by_id(w.sobject, w.record["Id"], fields), False
                    else:
                        rid, created = self.org.create(w.sobject, dict(w.record)), True
                w.result_id, w.created, w.error = to18(rid), created, None
            except RecordError as exc:
                code, message, fields_ = exc.errors[0]
                w.error = WriteError.of(code, message, tuple(fields_))

    async def send_together(self, groups: list[Any]) -> list[Write] | None:
        return None     # the stages' unit tier: each stage's writes on their own

    async def delete(self, ids: Sequence[str]) -> None:
        for i in ids:
            self.deleted.append(i)
            with self.org.lock:
                self.org.delete_by_id(i)

    def of(self, sobject: str, op: str | None = None) -> list[Write]:
        return [w for w in self.sent if w.sobject == sobject and (op is None or w.op == op)]


@dataclass
class MemoryState:
    """What earlier batches applied, as the stages read it."""

    events_: dict[str, dict[str, Any]] = field(default_factory=dict)
    categories_: dict[str, dict[str, str]] = field(default_factory=dict)
    statuses_: set[tuple[str, str]] = field(default_factory=set)
    people_: dict[str, dict[str, Any]] = field(default_factory=dict)
    members_: dict[str, dict[str, Any]] = field(default_factory=dict)
    records_: dict[str, dict[str, Any]] = field(default_factory=dict)
    written_: dict[str, dict[str, Any]] = field(default_factory=dict)     # sf_id → fields last sent

    @staticmethod
    def _pick(rows: dict[str, dict[str, Any]], keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {k: dict(rows[k]) for k in keys if k in rows}

    def events(self, event_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return self._pick(self.events_, event_ids)

    def categories(self, event_id: str) -> dict[str, str]:
        return dict(self.categories_.get(event_id, {}))

    def campaign_statuses(self, campaign_ids: Iterable[str]) -> set[tuple[str, str]]:
        ids = set(campaign_ids)
        return {s for s in self.statuses_ if s[0] in ids}

    def people(self, jomablue_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return self._pick(self.people_, jomablue_ids)

    def members(self, member_keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        return self._pick(self.members_, member_keys)

    def members_of_event(self, event_id: str) -> list[dict[str, Any]]:
        return [{"member_key": k, **r} for k, r in self.members_.items()
                if r.get("event_id") == event_id and r.get("cm_id")]

    def records(self, jomablue_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return self._pick(self.records_, jomablue_ids)

    def written(self, sf_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {k: {"fields": dict(self.written_[k])} for k in sf_ids if k in self.written_}

    def campaign_lock(self, campaign_id: str) -> AbstractAsyncContextManager[None]:
        return nullcontext()


@dataclass
class Ports:
    org: Org
    reader: OrgReader
    writer: OrgWriter
    state: MemoryState

    def context(self) -> StageContext:
        return StageContext(reader=self.reader, writer=self.writer, state=self.state, mappings=mappings())

    def run(self, stage: type[Stage], works: list[Work], facts: Facts | None = None) -> StageResult:
        return asyncio.run(stage(self.context()).run(works, facts or Facts()))


def ports() -> Ports:
    org = Org()
    return Ports(org, OrgReader(org), OrgWriter(org), MemoryState())


_n = iter(range(1, 1_000_000))


def work(msg: dict[str, Any]) -> Work:
    """A message as the engine hands it to the stages."""
    n = next(_n)
    body = json.dumps(msg, ensure_ascii=False)
    parsed = parse_body(body, SourcePolicy())
    assert isinstance(parsed, Message), parsed
    return Work(Inbound(handle=n, body=body, sqs_message_id=f"m{n}"), parsed)


def person(jid: str, *, email: str | None = "jane.doe@example.com", uid: str | None = "",
           at: str = "2025-09-10T23:04:51.127Z", checked_in: bool = False, **data: Any) -> dict[str, Any]:
    msg = sample("person")
    msg["generated_at"] = at
    msg["identifiers"].update({"id": jid, "email": email, "organisation_uid": uid})
    msg["data"].update({"checked_in": checked_in, "first_check_in": "2025-09-10T23:04:49.880Z" if checked_in else None,
                        **data})
    return msg


EVENT_ID = sample("person")["context"]["event_id"]


def no_access(sf_id: str) -> tuple[Callable[[Write], bool], WriteError]:
    """What record-level sharing answers for one record another user owns (private OWD)."""
    return (lambda w: w.record.get("Id") == sf_id,
            WriteError("INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id", (),
                       RowAction.NO_ACCESS))


def bad_reference(when: Callable[[Write], bool], field_: str) -> tuple[Callable[[Write], bool], WriteError]:
    """INVALID_CROSS_REFERENCE_KEY naming a field (a record type or owner the user may not use)."""
    return when, WriteError("INVALID_CROSS_REFERENCE_KEY", "Record Type ID: this ID value isn't valid for the user: "
                            "012000000000AAA", (field_,), RowAction.BAD_REFERENCE)
