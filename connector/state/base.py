"""The state store's port: what the engine, the runner and the CLI need from any backend.

The port is deliberately narrow: read methods, ``apply(changes)`` for everything a batch
learned (one transaction), and the bookkeeping of messages, runs and API usage. A backend
(SQLite, the embedded default; PostgreSQL for replicas) implements the granular writers of
:class:`ChangeSetWriter` and inherits ``apply`` from it, so both apply a ChangeSet the same way.
Both hand back the same plain dicts (connector/state/rows.py shapes them) and pass the same
contract tests (tests/state/); the store is chosen by :func:`connector.state.open_state`.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from connector.sync.changes import ChangeSet


class StateStore(Protocol):
    # -- reads the engine needs --------------------------------------------------------------
    # Last applied content per Jomablue resource: {resource_key: {content_hash, generated_at}}.
    def resources(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]: ...
    # People: registration id → {sobject, sf_id, rung, organisation_uid, email, record_hash}.
    def people(self, jomablue_ids: Iterable[str]) -> dict[str, dict[str, Any]]: ...
    # Events ({campaign_id, name, timezone, metadata, metadata_at, is_placeholder}) and categories.
    def events(self, event_ids: Iterable[str]) -> dict[str, dict[str, Any]]: ...
    def all_events(self, event_id: str | None = None) -> list[dict[str, Any]]: ...
    def categories(self, event_id: str) -> dict[str, str]: ...
    def campaign_statuses(self, campaign_ids: Iterable[str]) -> set[tuple[str, str]]: ...
    # CampaignMembers by their Jomablue id; sessions and captures by theirs.
    def members(self, member_keys: Iterable[str]) -> dict[str, dict[str, Any]]: ...
    def members_of_event(self, event_id: str) -> list[dict[str, Any]]: ...
    def records(self, jomablue_ids: Iterable[str]) -> dict[str, dict[str, Any]]: ...

    # -- replicas (PostgreSQL; SQLite: every key / no-ops, since one run holds its file) --------
    # hold: take a batch's per-resource locks, `keys` exclusively (the batch writes them) and
    # `shared` shared (it only reads them, e.g. the event whose category table its people use),
    # waiting up to wait_seconds; returns the keys obtained (the others belong to another
    # replica's batch: those messages wait). release_held: once the batch is committed.
    # campaign_lock: held only while one Campaign's members are written (Salesforce locks the
    # parent Campaign of every member write: concurrent writers only earn UNABLE_TO_LOCK_ROW).
    def hold(self, keys: Iterable[str], shared: Iterable[str] = (), wait_seconds: float = 0) -> set[str]: ...
    def release_held(self) -> None: ...
    def campaign_lock(self, campaign_id: str) -> AbstractContextManager[None]: ...

    # -- the one write of a batch ------------------------------------------------------------
    def apply(self, changes: ChangeSet) -> None:
        """Everything one batch learned, in one transaction (all or nothing)."""

    # -- repairs outside a batch (reconcile --fix) ---------------------------------------------
    def put_member(self, member_key: str, **fields: Any) -> None: ...

    # -- messages, runs, API usage ---------------------------------------------------------------
    def quarantined(self, message_keys: list[str] | None = None) -> list[dict[str, Any]]: ...
    def outcome_counts(self) -> dict[str, int]: ...
    def start_run(self) -> int: ...
    def finish_run(self, run_id: int, exit_code: int, summary: dict[str, Any]) -> None: ...
    def last_run(self) -> dict[str, Any] | None: ...
    def put_api_usage(self, used: int, max_: int) -> None: ...
    def api_usage(self) -> dict[str, Any] | None: ...
    def recent_runs(self, limit: int = 5) -> list[dict[str, Any]]: ...

    # The operator's console (issue 10): quarantine management, reconcile's reads and repairs.
    def drop_quarantined(self, message_key: str, *, reason: str, who: str) -> dict[str, Any] | None: ...
    def dropped(self) -> list[dict[str, Any]]: ...
    def message_stats_by_event(self) -> dict[str, dict[str, Any]]: ...
    def put_written(self, rows: list[tuple[str, str, dict[str, Any]]]) -> None: ...
    def written(self, sf_ids: Iterable[str]) -> dict[str, dict[str, Any]]: ...
    def all_members_of_event(self, event_id: str) -> list[dict[str, Any]]: ...
    def all_records(self) -> list[dict[str, Any]]: ...
    def relink_person(self, old_sf_id: str, sobject: str, new_sf_id: str) -> None: ...
    def setting(self, name: str, default: str) -> str: ...

    # The org's describes for preflight: sobject → {"describe": dict | None, "fetched_at": ISO}.
    def describes(self) -> dict[str, dict[str, Any]]: ...
    def put_describes(self, describes: dict[str, dict[str, Any] | None]) -> None: ...

    # `connector import` (issue 20): archive objects finished, per scope (the run's filters and mapping).
    def finished_imports(self, scopes: Iterable[str]) -> set[str]: ...
    def put_finished_import(self, object_uri: str, scope: str, lines: int) -> None: ...

    # Upkeep: delete outcome rows older than keep_days (quarantined ones stay); the store's size.
    def prune(self, keep_days: float) -> int: ...
    def size_bytes(self) -> int: ...
    # Health (readiness probes): a cheap round trip; raises StateUnavailable when the store
    # cannot answer (connection lost, file unreadable).
    def ping(self) -> None: ...
    def close(self) -> None: ...


class ChangeSetWriter:
    """``apply`` over a backend's granular writers, inside its ``atomic()`` transaction."""

    def apply(self, changes: ChangeSet) -> None:
        with self.atomic():  # type: ignore[attr-defined]
            for event_id, fields in changes.events.items():
                self.put_event(event_id, **fields)  # type: ignore[attr-defined]
            for event_id, table in changes.category_tables.items():
                self.replace_categories(event_id, table)  # type: ignore[attr-defined]
            self.add_campaign_statuses(changes.statuses)  # type: ignore[attr-defined]
            self.put_people(changes.people)  # type: ignore[attr-defined]
            for old_id, sobject, new_id in changes.relinks:
                self.relink_person_records(old_id, sobject, new_id)  # type: ignore[attr-defined]
            self.put_members(changes.members)  # type: ignore[attr-defined]
            self.forget_members(changes.forgotten_members)  # type: ignore[attr-defined]
            self.forget_campaigns(changes.forgotten_campaigns)  # type: ignore[attr-defined]
            self.forget_people(changes.forgotten_people)  # type: ignore[attr-defined]
            for jomablue_id, (sobject, sf_id) in changes.records.items():
                self.put_record(jomablue_id, sobject, sf_id)  # type: ignore[attr-defined]
            if changes.api_usage:
                self.put_api_usage(*changes.api_usage)  # type: ignore[attr-defined]
            if changes.written:
                self.put_written(changes.written)  # type: ignore[attr-defined]
            self.put_resources(changes.resources)  # type: ignore[attr-defined]
            self.record_outcomes(changes.outcomes)  # type: ignore[attr-defined]


class DryRunStore:
    """A dry run's store: reads from the real one, remembers nothing (chosen at wiring time)."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.batches = 0     # how many batches a real run would have remembered

    def apply(self, changes: ChangeSet) -> None:
        self.batches += 1

    def put_member(self, member_key: str, **fields: Any) -> None:
        pass

    def put_api_usage(self, used: int, max_: int) -> None:
        pass

    def put_describes(self, describes: dict[str, Any]) -> None:
        pass

    def start_run(self) -> int:
        return 0

    def put_finished_import(self, object_uri: str, scope: str, lines: int) -> None:
        pass

    def finish_run(self, run_id: int, exit_code: int, summary: dict[str, Any]) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)
