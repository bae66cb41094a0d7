"""The state store: what the connector has applied, and the links between Jomablue and Salesforce."""

from connector.state.sqlite import SqliteStateStore, open_state

__all__ = ["SqliteStateStore", "open_state"]
