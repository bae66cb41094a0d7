"""A dry run's store: reads from the real one, remembers nothing (chosen at wiring time).

Every read is delegated by name; every write is a no-op that is counted (``skipped``: method
name → calls), so a dry run can say what a real run would have remembered. Nothing reaches the
real store but reads, the replicas' locks and a first-time setting (:meth:`setting`) (a dry run
beside a live replica still waits its turn).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from connector.state.base import CallLimit, Row, StateStore

if TYPE_CHECKING:
    from connector.sync.changes import ChangeSet


class DryRunStore(StateStore):
    """A read-only StateStore over a real one."""

    def __init__(self, real: StateStore) -> None:
        self._real = real
        self.skipped: Counter[str] = Counter()

    @property
    def batches(self) -> int:
        """How many batches a real run would have remembered."""
        return self.skipped["apply"]

    def _skip(self, name: str) -> None:
        self.skipped[name] += 1

    # -- writes: counted, never made -----------------------------------------------------------
    def apply(self, changes: ChangeSet) -> None:
        self._skip("apply")

    def start_run(self) -> int:
        self._skip("start_run")
        return 0

    def finish_run(self, run_id: int, exit_code: int, summary: dict[str, Any]) -> None:
        self._skip("finish_run")

    def put_api_usage(self, used: int, max_: int) -> None:
        self._skip("put_api_usage")

    def drop_quarantined(self, message_key: str, *, reason: str, who: str) -> Row | None:
        self._skip("drop_quarantined")
        return None

    def settle_replayed(self, replays: list[Row]) -> None:
        self._skip("settle_replayed")

    def put_event(self, event_id: str, **fields: Any) -> None:
        self._skip("put_event")

    def put_record(self, jomablue_id: str, sobject: str, sf_id: str) -> None:
        self._skip("put_record")

    def put_member(self, member_key: str, **fields: Any) -> None:
        self._skip("put_member")

    def add_campaign_statuses(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._skip("add_campaign_statuses")

    def relink_person(self, old_sf_id: str, sobject: str, new_sf_id: str) -> None:
        self._skip("relink_person")

    def put_written(self, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
        self._skip("put_written")

    def put_describes(self, describes: dict[str, dict[str, Any] | None]) -> None:
        self._skip("put_describes")

    def put_finished_import(self, object_uri: str, scope: str, lines: int) -> None:
        self._skip("put_finished_import")

    def prune(self, keep_days: float) -> int:
        self._skip("prune")
        return 0

    def close(self) -> None:
        self._real.close()

    # -- reads, locks and health: the real store's ---------------------------------------------
    def resources(self, keys: Iterable[str]) -> dict[str, Row]:
        return self._real.resources(keys)

    def people(self, jomablue_ids: Iterable[str]) -> dict[str, Row]:
        return self._real.people(jomablue_ids)

    def events(self, event_ids: Iterable[str]) -> dict[str, Row]:
        return self._real.events(event_ids)

    def categories(self, event_id: str) -> dict[str, str]:
        return self._real.categories(event_id)

    def campaign_statuses(self, campaign_ids: Iterable[str]) -> set[tuple[str, str]]:
        return self._real.campaign_statuses(campaign_ids)

    def members(self, member_keys: Iterable[str]) -> dict[str, Row]:
        return self._real.members(member_keys)

    def members_of_event(self, event_id: str) -> list[Row]:
        return self._real.members_of_event(event_id)

    def records(self, jomablue_ids: Iterable[str]) -> dict[str, Row]:
        return self._real.records(jomablue_ids)

    def hold(self, keys: Iterable[str], shared: Iterable[str] = (), wait_seconds: float = 0) -> set[str]:
        return self._real.hold(keys, shared, wait_seconds)

    def release_held(self) -> None:
        self._real.release_held()

    def campaign_lock(self, campaign_id: str) -> AbstractAsyncContextManager[None]:
        return self._real.campaign_lock(campaign_id)

    def shared_call_limit(self, requests_per_second: float, max_in_flight: int) -> CallLimit | None:
        return self._real.shared_call_limit(requests_per_second, max_in_flight)

    def last_run(self) -> Row | None:
        return self._real.last_run()

    def recent_runs(self, limit: int = 5) -> list[Row]:
        return self._real.recent_runs(limit)

    def api_usage(self) -> Row | None:
        return self._real.api_usage()

    def quarantined(self, message_keys: list[str] | None = None) -> list[Row]:
        return self._real.quarantined(message_keys)

    def dropped(self) -> list[Row]:
        return self._real.dropped()

    def outcome_counts(self) -> dict[str, int]:
        return self._real.outcome_counts()

    def message_stats_by_event(self) -> dict[str, Row]:
        return self._real.message_stats_by_event()

    def all_events(self, event_id: str | None = None) -> list[Row]:
        return self._real.all_events(event_id)

    def all_members_of_events(self, event_ids: Iterable[str]) -> dict[str, list[Row]]:
        return self._real.all_members_of_events(event_ids)

    def all_records(self) -> list[Row]:
        return self._real.all_records()

    def written(self, sf_ids: Iterable[str]) -> dict[str, Row]:
        return self._real.written(sf_ids)

    def size_by_kind(self) -> dict[str, int]:
        return self._real.size_by_kind()

    def size_bytes(self) -> int:
        return self._real.size_bytes()

    def describes(self) -> dict[str, Row]:
        return self._real.describes()

    def finished_imports(self, scopes: Iterable[str]) -> set[str]:
        return self._real.finished_imports(scopes)

    def setting(self, name: str, default: str) -> str:
        # The redaction key: the one write a dry run lets through (stored the first time), so
        # the hashes in its logs match the real runs' before and after it.
        return self._real.setting(name, default)

    def ping(self) -> None:
        self._real.ping()
