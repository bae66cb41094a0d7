"""The state store: what the connector has applied, and the links between Jomablue and Salesforce."""

from connector.state.base import StateStore
from connector.state.sqlite import SqliteStateStore, open_state

__all__ = ["SqliteStateStore", "StateStore", "open_state"]
