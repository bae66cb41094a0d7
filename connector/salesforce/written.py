"""The write-journal hook: what each successful row of a collections call set on its record.

The gateway tells `on_written` (wired to the state store) after every collections call, also
one that ends the run (StorageFull, a failed subrequest): what Salesforce committed is
remembered, so reconcile can compare the org with what the connector wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connector.salesforce.ids import to18
from connector.salesforce.results import RowResult

WrittenRow = tuple[str, str, dict[str, Any]]      # (18-character id, sobject, fields sent)
OnWritten = Callable[[list[WrittenRow]], None]


def written_rows(records: list[dict[str, Any]], results: list[RowResult]) -> list[WrittenRow]:
    rows = []
    for rec, res in zip(records, results, strict=True):
        rid = res.id or rec.get("Id")
        if res.ok and rid:
            rows.append((to18(rid), rec["attributes"]["type"],
                         {k: v for k, v in rec.items() if k not in ("attributes", "Id")}))
    return rows
