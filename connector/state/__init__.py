"""The state store: what the connector has applied, and the links between Jomablue and Salesforce.

`open_state(location)` picks the backend: a `postgresql://` URL opens the shared PostgreSQL store
(replicas, disk-less containers); anything else is a SQLite file path (the embedded default).
"""

from __future__ import annotations

from pathlib import Path

from connector.state.base import StateStore
from connector.state.sqlite import SqliteStateStore

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(location: object) -> bool:
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


def open_state(location: Path | str, *, pool_size: int = 8) -> StateStore:
    """Open (and migrate) the state store at a SQLite path or a PostgreSQL URL."""
    if is_postgres_url(location):
        from connector.state.postgres import PostgresStateStore  # psycopg only when used

        return PostgresStateStore(str(location), pool_size=pool_size)
    return SqliteStateStore(location)


__all__ = ["SqliteStateStore", "StateStore", "is_postgres_url", "open_state"]
