"""The write journal: what the connector last sent to each Salesforce record.

The state store keeps the fields last sent to each record id, merged write after write, so
reconcile can compare a record with what the connector wrote, field by field, without the message
bodies (which are not kept once synced). A run's writes reach it in the batch's ChangeSet (one
transaction with everything else the batch learned); reconcile's own repairs, made outside a
batch, through :class:`WriteJournal` on the gateway's ``on_written`` hook.
"""

from __future__ import annotations

from typing import Any

from connector import logs
from connector.state.base import StateStore

# Records whose contents reconcile never compares: not worth a row each.
_NOT_JOURNALED = {"CampaignMemberStatus"}


def journaled(rows: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[str, str, dict[str, Any]]]:
    """The rows worth keeping: (18-char Id, sobject, fields) of objects reconcile compares."""
    return [r for r in rows if r[1] not in _NOT_JOURNALED]


class WriteJournal:
    def __init__(self, state: StateStore) -> None:
        self.state = state

    def __call__(self, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
        rows = journaled(rows)
        if not rows:
            return
        try:
            self.state.put_written(rows)
        except Exception as exc:  # the sync must not fail because its bookkeeping for reconcile did
            logs.get().warning("write_journal_failed", error=f"{type(exc).__name__}: {exc}", records=len(rows),
                               note="reconcile may report these records as drifted until they are written again")
