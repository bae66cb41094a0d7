"""The write journal: what the connector last sent to each Salesforce record.

The gateway reports every successful collections write (``SalesforceGateway.on_written``);
this keeps the fields per record id in the state store, merged write after write, so reconcile
can compare a record with what the connector wrote, field by field, without the message
bodies (which are not kept once synced). It is saved right after Salesforce confirmed the write,
before the batch commits: a crash in between leaves the message queued, and its redelivery
writes (and journals) again.
"""

from __future__ import annotations

from typing import Any

from connector import logs
from connector.state.base import StateStore

# Records whose contents reconcile never compares: not worth a row each.
_NOT_JOURNALED = {"CampaignMemberStatus"}


class WriteJournal:
    def __init__(self, state: StateStore) -> None:
        self.state = state

    def __call__(self, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
        rows = [r for r in rows if r[1] not in _NOT_JOURNALED]
        if not rows:
            return
        try:
            self.state.put_written(rows)
        except Exception as exc:  # the sync must not fail because its bookkeeping for reconcile did
            logs.get().warning("write_journal_failed", error=f"{type(exc).__name__}: {exc}", records=len(rows),
                               note="reconcile may report these records as drifted until they are written again")
