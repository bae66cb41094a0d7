"""What every stage shares: its three ports (a reader, a writer, the state store's read side),
the mappings; and the shape of a stage's answer.

A stage reads the messages it is given and the :class:`Facts` earlier stages found, and returns
``StageResult(facts, changes, verdicts, notes)``: the facts with its own findings added, what the
state store must remember, what it decided per message (quarantine reasons, retries, outcome
notes) and run-summary sentences. Stages never write to the state store nor into the messages:
a stage is a function of its inputs and its ports, so `tests/sync/` runs each one on fakes.
The stages' order and what each hands the next: connector/sync/engine.py's docstring.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from connector.mapping import MappingSet, ResourceMapping
from connector.sync.changes import ChangeSet, Facts
from connector.sync.model import Work, Write
from connector.sync.verdicts import Verdicts


class Reader(Protocol):
    """What stages read from Salesforce: SOQL, several queries to a call (the gateway is one).
    `include_deleted` reads through queryAll: deleted and merged-away records too."""

    async def query_many(self, soqls: Sequence[str], include_deleted: bool = False) -> list[list[dict[str, Any]]]: ...


class RecordWriter(Protocol):
    """What stages write through (connector/sync/writer.py: the real one and the dry run's)."""

    async def send(self, writes: list[Write], ext_field: str | None = None, serial: bool = False) -> None: ...

    async def delete(self, ids: Sequence[str]) -> None: ...

    # Several groups in one call, later ones naming earlier ones' records (writer.Together);
    # None when the writer does not combine.
    async def send_together(self, groups: list[Any]) -> list[Write] | None: ...


class StageReads(Protocol):
    """The state store as stages see it: reads of what earlier batches applied, and the
    Campaign locks members are written under."""

    def events(self, event_ids: Iterable[str]) -> dict[str, dict[str, Any]]: ...
    def categories(self, event_id: str) -> dict[str, str]: ...
    def campaign_statuses(self, campaign_ids: Iterable[str]) -> set[tuple[str, str]]: ...
    def people(self, jomablue_ids: Iterable[str]) -> dict[str, dict[str, Any]]: ...
    def members(self, member_keys: Iterable[str]) -> dict[str, dict[str, Any]]: ...
    def members_of_event(self, event_id: str) -> list[dict[str, Any]]: ...
    def records(self, jomablue_ids: Iterable[str]) -> dict[str, dict[str, Any]]: ...
    def written(self, sf_ids: Iterable[str]) -> dict[str, dict[str, Any]]: ...   # the write journal
    def campaign_lock(self, campaign_id: str) -> AbstractAsyncContextManager[None]: ...


@dataclass
class StageResult:
    facts: Facts
    changes: ChangeSet = field(default_factory=ChangeSet)
    verdicts: Verdicts = field(default_factory=Verdicts)
    notes: list[str] = field(default_factory=list)
    # Objects whose refused writes a read explained (records deleted or merged away): not the
    # org refusing the mapping, even when every write of that object failed alike.
    explained: frozenset[str] = frozenset()


@dataclass(frozen=True)
class StageContext:
    reader: Reader
    writer: RecordWriter
    state: StageReads
    mappings: MappingSet


class Stage(ABC):
    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self.reader = ctx.reader    # reads (SOQL) go to Salesforce, also in a dry run
        self.writer = ctx.writer
        self.state = ctx.state
        self.mappings = ctx.mappings
        self.verdicts = Verdicts()  # this run's decisions per message, returned in its StageResult

    def mapping_of(self, work: Work) -> ResourceMapping:
        rm = self.mappings.for_type(work.msg.resource_type)
        assert rm is not None, "the engine admits only mapped resource types"
        return rm

    @abstractmethod
    async def run(self, works: list[Work], facts: Facts) -> StageResult:
        """The stage's writes for these messages (only the ones still ok), and what it learned."""


class CategoryTables:
    """An event's category table: this batch's event message wins over the stored one."""

    def __init__(self, state: StageReads, facts: Facts) -> None:
        self.state = state
        self.fresh = facts.category_tables
        self._stored: dict[str, dict[str, str]] = {}

    def __call__(self, event_id: str) -> dict[str, str]:
        if event_id in self.fresh:
            return dict(self.fresh[event_id])
        if event_id not in self._stored:
            self._stored[event_id] = self.state.categories(event_id)
        return self._stored[event_id]
