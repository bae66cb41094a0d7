"""The state store: what the connector has applied, and the links between Jomablue and Salesforce.

:func:`open_state` is the one factory: given the configuration (or a location) it opens the
configured backend: a `postgresql://` URL opens the shared PostgreSQL store (replicas,
disk-less containers); anything else is a SQLite file path (the embedded default).
:func:`run_lock` is the guard a `connector run` takes on it. A new backend is a module here and
a branch in these two functions; callers see only the ports of :mod:`connector.state.base`.
Both backends' drivers (sqlite3, psycopg) are runtime dependencies and imported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from connector.state.base import (
    BatchLocks,
    ConsoleQueries,
    DescribeCache,
    EngineReads,
    EngineState,
    Repairs,
    RunLog,
    StateStore,
    Upkeep,
)
from connector.state.dryrun import DryRunStore
from connector.state.postgres import PostgresStateStore
from connector.state.sqlite import RunLock, SqliteStateStore

if TYPE_CHECKING:
    from connector.config import Config

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
DEFAULT_POOL_SIZE = 8


class RunGuard(Protocol):
    """One `connector run` per store where the backend needs it (acquire: StopRun when taken)."""

    def acquire(self, wait_seconds: float = 0) -> None: ...
    def release(self) -> None: ...


class _NoGuard:
    """PostgreSQL: replicas share the store by design (its per-resource locks keep them apart)."""

    def acquire(self, wait_seconds: float = 0) -> None:
        return None

    def release(self) -> None:
        return None


def is_postgres_url(location: object) -> bool:
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


def open_state(where: Config | Path | str, *, pool_size: int | None = None) -> StateStore:
    """Open (and migrate) the state store: the configured one (`cfg.state.url`, else
    `cfg.state.path`), or the one at a SQLite path or PostgreSQL URL.

    With a configuration, the PostgreSQL pool is big enough for every in-flight call's
    shared-limit slot, a commit and a lock or two. Every failure is one StateUnavailable.
    """
    if isinstance(where, (str, Path)):
        location: Path | str = where
        size = pool_size or DEFAULT_POOL_SIZE
    else:
        location = where.state.url or where.state.path
        size = pool_size or where.salesforce.max_in_flight + 4
    if is_postgres_url(location):
        return PostgresStateStore(str(location), pool_size=size)
    return SqliteStateStore(location)


def run_lock(cfg: Config) -> RunGuard:
    """The guard of one run: an flock beside a SQLite file; nothing for PostgreSQL or :memory:."""
    if cfg.state.url is not None or str(cfg.state.path) == ":memory:":
        return _NoGuard()
    return RunLock(cfg.state.path)


__all__ = [
    "BatchLocks", "ConsoleQueries", "DescribeCache", "DryRunStore", "EngineReads", "EngineState",
    "PostgresStateStore", "Repairs", "RunGuard", "RunLog", "SqliteStateStore", "StateStore", "Upkeep",
    "is_postgres_url", "open_state", "run_lock",
]
