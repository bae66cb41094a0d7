"""What every stage shares: the writer, the state store (read side), the mappings; and the shape
of a stage's answer.

A stage reads the messages it is given and the :class:`Facts` earlier stages found, and returns
``StageResult(facts, changes, notes)``: the facts with its own findings added, what the state
store must remember, and run-summary sentences. Stages never write to the state store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from connector.mapping import MappingSet, ResourceMapping
from connector.state.base import StateStore
from connector.sync.changes import ChangeSet, Facts
from connector.sync.model import Work
from connector.sync.writer import Writer


@dataclass
class StageResult:
    facts: Facts
    changes: ChangeSet = field(default_factory=ChangeSet)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StageContext:
    writer: Writer
    state: StateStore
    mappings: MappingSet


class Stage(ABC):
    def __init__(self, ctx: StageContext) -> None:
        self.writer = ctx.writer
        self.gateway = ctx.writer.gateway    # reads (SOQL); writes go through the writer
        self.state = ctx.state
        self.mappings = ctx.mappings

    def mapping_of(self, work: Work) -> ResourceMapping:
        rm = self.mappings.for_type(work.msg.resource_type)
        assert rm is not None, "the engine admits only mapped resource types"
        return rm

    @abstractmethod
    async def run(self, works: list[Work], facts: Facts) -> StageResult:
        """The stage's writes for these messages (only the ones still ok), and what it learned."""


class CategoryTables:
    """An event's category table: this batch's event message wins over the stored one."""

    def __init__(self, state: StateStore, facts: Facts) -> None:
        self.state = state
        self.fresh = facts.category_tables
        self._stored: dict[str, dict[str, str]] = {}

    def __call__(self, event_id: str) -> dict[str, str]:
        if event_id in self.fresh:
            return dict(self.fresh[event_id])
        if event_id not in self._stored:
            self._stored[event_id] = self.state.categories(event_id)
        return self._stored[event_id]
