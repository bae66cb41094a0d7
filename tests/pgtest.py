"""PostgreSQL for tests: a fresh schema per test on the server at CONNECTOR_TEST_PG_URL.

Default: postgresql://postgres@127.0.0.1:5432/test (trust authentication, as on the project's
machines and in CI). When no server answers, PostgreSQL tests skip with the reason, except under
CI (CI=true), where an unreachable server fails them: CI must never pass by skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from urllib.parse import quote

import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def base_url() -> str:
    return os.environ.get("CONNECTOR_TEST_PG_URL", DEFAULT_URL)


@lru_cache(maxsize=1)
def unreachable_reason() -> str | None:
    """None when the server answers, else why not."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - psycopg is a runtime dependency
        return f"psycopg is not installed ({exc})"
    try:
        with psycopg.connect(base_url(), connect_timeout=3) as conn:
            conn.execute("select 1")
    except psycopg.Error as exc:
        return f"no PostgreSQL server answers at {base_url()}: {str(exc).strip().splitlines()[0]}"
    return None


def require_postgres() -> None:
    reason = unreachable_reason()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    print(f"\nskipping PostgreSQL test: {reason}")
    pytest.skip(reason)


def schema_url(schema: str) -> str:
    """The test server's URL with search_path set to `schema` (the store creates it)."""
    sep = "&" if "?" in base_url() else "?"
    return f"{base_url()}{sep}options={quote(f'-csearch_path={schema}')}"


def drop_schema(schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(base_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))


@contextmanager
def fresh_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a brand-new schema, dropped afterwards."""
    require_postgres()
    schema = "jbtest_" + uuid.uuid4().hex[:12]
    try:
        yield schema_url(schema)
    finally:
        drop_schema(schema)


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_schema_url() as url:
        yield url
