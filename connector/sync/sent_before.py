"""Whether a person's messages would send their Salesforce record anything it was not sent before.

Two records of what was sent: per person, one hash per source mapping (resource type) of the
fields its updates send, kept in the person's link; per Salesforce record, the write journal
(connector/reconcile/journal.py: every field an update sends, overwrite: always). A source whose
hash is stored is settled at once. A source never written to the record (a session check-in
after the registration) is settled when every field it would send is what the journal says the
record was last sent: the people stage then makes no lookup and no write for that person
(issue #18: the check-ins of registered people cost their memberships only). Either way an
admin's later edit in Salesforce is reconcile's to report, not a reason to write the same values
again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from connector.mapping import PersonMapping
from connector.payloads import stable_hash
from connector.salesforce.ids import to18
from connector.sync.model import Work
from connector.sync.stage import StageReads

_ABSENT = object()       # a field the journal does not hold: never equal to a value


def stored_hashes(link: dict[str, Any]) -> dict[str, str]:
    """The per-source hashes a link keeps (JSON); anything else (an older store) counts as none."""
    try:
        found = json.loads(link.get("record_hash") or "")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


class SentBefore:
    """One batch's answers, over its messages per person (`sources`: oldest first)."""

    def __init__(self, sources: dict[str, list[tuple[Work, PersonMapping]]]) -> None:
        self.sources = sources
        self.journal: dict[str, dict[str, Any]] = {}    # sf_id → fields last sent (read_journal)
        self._hashes: dict[tuple[str, str, str], dict[str, str]] = {}

    def records(self, jid: str, sobject: str) -> dict[str, dict[str, Any]]:
        """Per source mapping, the fields an update from its messages would send (newest winning)."""
        by_type: dict[str, dict[str, Any]] = {}
        for w, pm in self.sources.get(jid, []):
            rec_map = pm.lead if sobject == pm.lead.object else pm.contact
            by_type.setdefault(w.msg.resource_type, {}).update(
                rec_map.build(w.msg.payload, {}, mode="update", current=None))
        return by_type

    def hashes(self, jid: str, sobject: str, sf_id: str) -> dict[str, str]:
        """One hash per source mapping of what its writes to this record would send, create-only
        and fill-if-empty fields left out: the same whether the record was just created or
        updated, so an unchanged person costs nothing whatever resource type mentions them, and
        two resource types never rewrite each other's fields."""
        if (jid, sobject, sf_id) not in self._hashes:    # asked before and after the lookup: built once
            self._hashes[(jid, sobject, sf_id)] = {rt: stable_hash({"o": sobject, "id": sf_id, **rec})
                                                   for rt, rec in self.records(jid, sobject).items()}
        return self._hashes[(jid, sobject, sf_id)]

    def hashed(self, jid: str, sobject: str, sf_id: str, stored: dict[str, str]) -> bool:
        """Every source's hash is the one stored: this record was sent exactly this."""
        return bool(stored) and all(stored.get(rt) == h for rt, h in self.hashes(jid, sobject, sf_id).items())

    def read_journal(self, state: StageReads, sf_ids: Iterable[str]) -> None:
        """One read of what was last sent to the records the hashes cannot vouch for."""
        ids = set(sf_ids)
        self.journal = {k: row.get("fields") or {} for k, row in state.written(ids).items()} if ids else {}

    def unchanged(self, jid: str, sobject: str, sf_id: str, stored: dict[str, str]) -> bool:
        """Whether every source's update would send this record what it was last sent: by the
        source's own hash, else field by field against the journal read for it."""
        if self.hashed(jid, sobject, sf_id, stored):
            return True
        sent = self.journal.get(to18(sf_id))
        if not sent:
            return False
        hashes = self.hashes(jid, sobject, sf_id)
        return all(stored.get(rt) == hashes[rt] or all(sent.get(k, _ABSENT) == v for k, v in rec.items())
                   for rt, rec in self.records(jid, sobject).items())
