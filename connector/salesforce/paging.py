"""Query results page by page, and which queries must travel in a request body.

A query's answer holds up to 2,000 records; the rest is fetched from `nextRecordsUrl` until
`done` (REST API Developer Guide, "Execute a SOQL Query": "If the initial query returns only
part of the results, the end of the response will contain a field called nextRecordsUrl").
A request line plus headers over 16,384 bytes is refused with 414/431 and an HTML body
(Salesforce Help 000386264), which recommends sending such a query as a /composite subrequest,
whose URL travels in the body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

# A query whose URL-encoded text is longer than this travels in a /composite body.
MAX_GET_QUERY = 12_000


def too_long_for_a_url(soql: str) -> bool:
    return len(urlencode({"q": soql})) > MAX_GET_QUERY


def query_path(resource: str, soql: str) -> str:
    """The path (below /services/data/vXX.X/) of a query or queryAll GET."""
    return f"{resource}/?{urlencode({'q': soql})}"


async def drain_pages(page: dict[str, Any], api_version: str,
                      fetch: Callable[[str], Awaitable[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Every record of a query answer and its following pages, `attributes` stripped.
    `fetch(path)` GETs a path below /services/data/vXX.X/ (one API call a page)."""
    out: list[dict[str, Any]] = []
    while True:
        for rec in page.get("records", []):
            rec.pop("attributes", None)
            out.append(rec)
        nxt = page.get("nextRecordsUrl")
        if page.get("done", True) or not nxt:
            return out
        page = await fetch(nxt.split(f"/v{api_version}/", 1)[-1])
