"""PostgreSQL tests skip when no server answers, except under CI=true, where they fail."""

from __future__ import annotations

import pgtest
import pytest


@pytest.fixture
def nowhere(monkeypatch):
    monkeypatch.setenv("CONNECTOR_TEST_PG_URL", "postgresql://postgres@127.0.0.1:1/nowhere")
    pgtest.unreachable_reason.cache_clear()
    yield
    pgtest.unreachable_reason.cache_clear()


def test_no_server_skips_with_the_reason(nowhere, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no PostgreSQL server answers at postgresql://postgres@127.0.0.1:1"):
        pgtest.require_postgres()


def test_no_server_under_ci_fails(nowhere, monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true and no PostgreSQL server answers"):
        pgtest.require_postgres()
