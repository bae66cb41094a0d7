"""What stages hand on: the facts later stages read, and the changes the state store applies.

Each stage is ``run(works, facts) -> (facts, changes, notes)``:

- :class:`Facts` is what a batch has learned about Salesforce so far (which Campaign an event is,
  which record a person is...). A stage returns a new Facts with its own findings added; nothing
  changes the facts an earlier stage made.
- :class:`ChangeSet` is what the state store must remember once the batch is done. The engine
  merges every stage's changes, adds the resources and outcomes, and hands the lot to
  ``StateStore.apply`` in one transaction, after Salesforce confirmed the writes and before the
  messages leave SQS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class PersonRecord:
    """The Lead or Contact a Jomablue person is, as this batch found or made it."""

    sobject: str
    sf_id: str
    rung: str                               # which rung of the identity ladder matched
    converted_from: str | None = None       # the Lead id when the match followed a conversion
    record_hash: str | None = None          # what was last written (an unchanged person costs nothing)
    organisation_uid: str | None = None     # what the person's messages said, for the stored link
    email: str | None = None
    merged_from: str | None = None          # the linked record's id when an admin merged it into this one


@dataclass(frozen=True)
class Facts:
    """Read-only findings of the stages so far (Jomablue ids → Salesforce ids)."""

    events: Mapping[str, dict[str, Any]] = field(default_factory=_empty)    # stored rows of the batch's events
    campaigns: Mapping[str, str] = field(default_factory=_empty)            # event id → Campaign Id
    sessions: Mapping[str, str] = field(default_factory=_empty)             # session id → child Campaign Id
    fresh_campaigns: frozenset[str] = frozenset()          # created by this batch
    status_errors: Mapping[str, str] = field(default_factory=_empty)        # Campaign Id → why statuses are missing
    people: Mapping[str, PersonRecord] = field(default_factory=_empty)      # Jomablue person id → record
    # event id → category table from this batch's event message
    category_tables: Mapping[str, Mapping[str, str]] = field(default_factory=_empty)
    event_messages: Mapping[str, tuple[Any, ...]] = field(default_factory=_empty)  # event id → its event message
    members: Mapping[str, dict[str, Any]] = field(default_factory=_empty)   # member key → row written by this batch
    # Campaign Id → Label → SortOrder, read in this batch (a new Campaign's, with the people lookup)
    status_reads: Mapping[str, Mapping[str, int]] = field(default_factory=_empty)
    # member key → its write sent with the people's writes (issue #18), as Salesforce answered it
    early_members: Mapping[str, Any] = field(default_factory=_empty)
    # (Campaign Id, label) → its status write sent with the people's writes, as Salesforce answered it
    early_statuses: Mapping[tuple[str, str], Any] = field(default_factory=lambda: MappingProxyType({}))

    def learn(self, **found: Any) -> Facts:
        """A new Facts with these fields added to what is known: a key learnt again takes the new
        value (a later stage's finding wins), the rest are kept."""
        merged: dict[str, Any] = {}
        for name, value in found.items():
            old = getattr(self, name)
            if isinstance(old, frozenset):
                merged[name] = old | frozenset(value)
            else:
                merged[name] = MappingProxyType({**old, **value})
        return replace(self, **merged)


@dataclass
class ChangeSet:
    """Everything one batch asks the state store to remember, applied in one transaction."""

    events: dict[str, dict[str, Any]] = field(default_factory=dict)           # event id → columns
    category_tables: dict[str, dict[str, str]] = field(default_factory=dict)  # event id → whole new table
    statuses: set[tuple[str, str]] = field(default_factory=set)               # (Campaign Id, label) now present
    people: dict[str, dict[str, Any]] = field(default_factory=dict)           # Jomablue person id → link
    relinks: list[tuple[str, str, str]] = field(default_factory=list)         # (old Lead id, sobject, new id)
    members: dict[str, dict[str, Any]] = field(default_factory=dict)          # member key → row
    forgotten_members: set[str] = field(default_factory=set)                  # deleted in Salesforce
    forgotten_campaigns: set[str] = field(default_factory=set)                # deleted in Salesforce
    forgotten_people: set[str] = field(default_factory=set)                   # links to deleted records
    records: dict[str, tuple[str, str]] = field(default_factory=dict)         # Jomablue id → (sobject, Id)
    resources: list[tuple[str, str, str]] = field(default_factory=list)       # (key, version, generated_at)
    outcomes: list[dict[str, Any]] = field(default_factory=list)              # message outcome rows
    written: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # reconcile's journal
    api_usage: tuple[int, int] | None = None                                  # (used, max) last seen

    def merge(self, other: ChangeSet) -> ChangeSet:
        """Fold a later stage's changes into these (later rows win)."""
        self.events.update({k: {**self.events.get(k, {}), **v} for k, v in other.events.items()})
        self.category_tables.update(other.category_tables)
        self.statuses |= other.statuses
        self.people.update(other.people)
        self.relinks.extend(other.relinks)
        self.members.update(other.members)
        self.forgotten_members |= other.forgotten_members
        self.forgotten_campaigns |= other.forgotten_campaigns
        self.forgotten_people |= other.forgotten_people
        self.records.update(other.records)
        self.resources.extend(other.resources)
        self.outcomes.extend(other.outcomes)
        self.written.extend(other.written)
        self.api_usage = other.api_usage or self.api_usage
        return self
