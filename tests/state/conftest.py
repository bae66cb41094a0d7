"""The backend fixtures of the state-store contract tests: each test that uses them runs once per
backend. PostgreSQL tests get a brand-new schema and skip with the reason when no server answers,
except under CI=true."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pgtest import fresh_schema_url

from connector.state import StateStore, open_state

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path | str]:
    if request.param == "sqlite":
        yield tmp_path / "state" / "s.db"
        return
    with fresh_schema_url() as url:
        yield url


@pytest.fixture
def opener(location: Path | str) -> Iterator[Callable[[], StateStore]]:
    """Opens stores on the test's location (two stores on one location = two processes)."""
    opened: list[StateStore] = []

    def open_one() -> StateStore:
        s = open_state(location)
        opened.append(s)
        return s

    yield open_one
    for s in opened:
        s.close()


@pytest.fixture
def store(opener: Callable[[], StateStore]) -> StateStore:
    return opener()
