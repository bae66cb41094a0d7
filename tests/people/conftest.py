from __future__ import annotations

import pytest

from .helpers import Connector


@pytest.fixture
def connector(emu, tmp_path):
    """A connector on a fresh state db against a fresh emulator org."""
    made = []

    def make(state_name: str = "state.db", mapping=None, dry_run: bool = False) -> Connector:
        c = Connector(emu, tmp_path / state_name, mapping, dry_run=dry_run)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
