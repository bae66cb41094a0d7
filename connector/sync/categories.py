"""Stage: a category renamed or removed (published only as an event message) reaches every
member of that event, in batched updates; the run summary says how many."""

from __future__ import annotations

from typing import Any

from connector.sync.changes import ChangeSet, Facts
from connector.sync.members import campaign_locks
from connector.sync.model import Work, Write
from connector.sync.stage import Stage, StageResult


class CategoryStage(Stage):
    async def run(self, works: list[Work], facts: Facts) -> StageResult:
        changes = ChangeSet()
        notes: list[str] = []
        person = self.mappings.for_type("person")
        field = person.membership.field_for_ref("categories.names") if person and person.membership else None
        if not field:
            return StageResult(facts, changes, self.verdicts, notes)
        planned: list[tuple[str, dict[str, str], dict[str, str], dict[str, dict[str, Any]], list[Write]]] = []
        for eid, table in facts.category_tables.items():
            old = self.state.categories(eid)
            if table == old:
                continue
            rows = {r["member_key"]: r for r in self.state.members_of_event(eid)}
            rows.update({k: r for k, r in facts.members.items() if r.get("event_id") == eid and r.get("cm_id")})
            planned.append((eid, old, dict(table), rows,
                            self._writes(rows, table, field, list(facts.event_messages.get(eid, ())))))
        # Every event of the batch in the same calls (grouped by Campaign for its lock).
        async with campaign_locks(self.state, {facts.campaigns.get(eid) for eid, *_ in planned}):
            await self.writer.send([x for *_, writes in planned for x in writes], serial=True)
        for eid, old, table, rows, writes in planned:
            updated = 0
            for x in writes:
                if x.error:
                    self.verdicts.settle(x)
                    continue
                updated += 1
                row = {k: v for k, v in rows[x.key].items() if k != "member_key"}
                row["categories_text"] = x.record.get(field)
                changes.members[x.key] = row
            notes.extend(self._notes(eid, old, table, rows, [x for x in writes if not x.error], updated))
        return StageResult(facts, changes, self.verdicts, notes)

    @staticmethod
    def _writes(rows: dict[str, dict[str, Any]], table: Any, field: str, event_messages: list[Work]) -> list[Write]:
        writes = []
        for key, r in rows.items():
            names = [table[c] for c in r.get("category_ids") or [] if c in table]
            text = ";".join(names) or None
            if text != (r.get("categories_text") or None):
                # REST clears a field with JSON null; fieldsToNull is a SOAP-only property
                # (jsforce issue #80: a REST update with `Field: null` resets it; NetCoreForce #54).
                writes.append(Write("CampaignMember", "update", {"Id": r["cm_id"], field: text}, list(event_messages),
                                    key=key, label=f"categories of CampaignMember {r['cm_id']}"))
        return writes

    @staticmethod
    def _notes(eid: str, old: dict[str, str], table: dict[str, str], rows: dict[str, dict[str, Any]],
               done: list[Write], updated: int) -> list[str]:
        renamed = {c: (old[c], table[c]) for c in table if c in old and old[c] != table[c]}
        removed = {c: old[c] for c in old if c not in table}
        notes = []
        for c, (a, z) in renamed.items():
            n = sum(1 for x in done if c in (rows[x.key].get("category_ids") or []))
            notes.append(f"category {c} renamed {a!r} → {z!r}: {n:,} members updated")
        for c, a in removed.items():
            n = sum(1 for x in done if c in (rows[x.key].get("category_ids") or []))
            notes.append(f"category {c} ({a!r}) removed: {n:,} members updated")
        if not renamed and not removed and updated:
            notes.append(f"event {eid}: categories known now: {updated:,} members updated")
        return notes
