"""Helpers for state-store tests that go through the store's port."""

from __future__ import annotations

from typing import Any

from connector.state import EngineState
from connector.sync.changes import ChangeSet


def record_outcome(store: EngineState, message_key: str, *, outcome: str, **fields: Any) -> None:
    """One message's outcome, remembered as a batch remembers it (apply: one transaction)."""
    store.apply(ChangeSet(outcomes=[{"message_key": message_key, "outcome": outcome, **fields}]))
