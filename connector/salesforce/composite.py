"""Packing several requests into one /composite call, and reading its subresponses.

Salesforce bills a /composite request as one call: "The entire series of requests counts as a
single call toward your API limits"; it takes "up to 25 subrequests in a single call. Up to 5
of these subrequests can be sObject Collections or query operations" (REST API Developer Guide,
"Composite", developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_composite_post.htm).
An sObject Collections call takes at most 200 records ("sObject Collections").

Order: "When subrequests are collated, the processing speed is faster, but the order of
execution is not guaranteed ... In API version 49.0 and later, the default value is true"
(REST API Developer Guide, "Composite Request Body", requests_composite.htm). Where order
matters (one Campaign's members, a later subrequest that depends on an earlier one) the body
says `collateSubrequests: false`.

Writes that depend on each other's results travel together (issue #18): a later subrequest names
an earlier one's result with a reference, "@{referenceId.field}", and into a collection's
answer by index, "@{people0[3].id}" for its fourth record (Composite Subrequest, "referenceId":
"can be used to reference the response in later subrequests ... The [] operator indexes a JSON
collection"; developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/
resources_composite_graph_composite_subrequest.htm, the same subrequest shape /composite takes,
requests_composite.htm). A reference that has no value (the row it
names failed) fails that subrequest only, and with allOrNone false "the remaining subrequests
that don't depend on the failed subrequest are executed. Dependent subrequests aren't
executed". Such a body says `collateSubrequests: false` besides: the references alone keep a
dependant after what it names ("the order of execution is not guaranteed (unless there is an
explicit dependency between the subrequests)"), but the members of one Campaign must also go
in order, and an explicit order costs nothing here.

Headers: a subrequest may carry "any header supported by the requested resource, except ...
Accept, Authorization, Content-Type" (same page), which it inherits from the top-level request.
Nothing in the documentation says whether `Sforce-Auto-Assign` and
`Sforce-Duplicate-Rule-Header` take effect from a subrequest, so the write headers travel both
on the top-level request and in every subrequest's `httpHeaders`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

BATCH_LIMIT = 200                  # records in one sObject Collections call
COMPOSITE_QUERY_LIMIT = 5          # query subrequests in one /composite request
COMPOSITE_COLLECTIONS_LIMIT = 5    # sObject Collections subrequests in one /composite request

Subresponse = tuple[int | None, Any]    # (httpStatusCode, body); (None, None) when it is missing


def composite_body(subrequests: list[dict[str, Any]], *, ordered: bool = False) -> dict[str, Any]:
    """A /composite body whose subrequests do not depend on each other's success (allOrNone
    false: "the remaining subrequests that don't depend on the failed subrequest are executed")."""
    body: dict[str, Any] = {"allOrNone": False, "compositeRequest": subrequests}
    if ordered:
        body["collateSubrequests"] = False
    return body


def get_subrequests(base: str, paths: Sequence[str], ref: str) -> list[dict[str, Any]]:
    return [{"method": "GET", "url": base + path, "referenceId": f"{ref}{n}"} for n, path in enumerate(paths)]


def collection_subrequests(url: str, method: str, chunks: Sequence[list[dict[str, Any]]],
                           headers: dict[str, str], ref: str = "c") -> list[dict[str, Any]]:
    extra = {"httpHeaders": dict(headers)} if headers else {}
    return [{"method": method, "url": url, "referenceId": f"{ref}{n}",
             "body": {"allOrNone": False, "records": chunk}, **extra} for n, chunk in enumerate(chunks)]


def subresponses(result: Any, count: int, ref: str) -> list[Subresponse]:
    """(status, body) of subrequests `{ref}0` … `{ref}{count-1}`, in that order."""
    by_ref = {r.get("referenceId"): r for r in (result or {}).get("compositeResponse", []) if isinstance(r, dict)}
    out: list[Subresponse] = []
    for n in range(count):
        sub = by_ref.get(f"{ref}{n}") or {}
        out.append((sub.get("httpStatusCode"), sub.get("body")))
    return out


@dataclass(frozen=True)
class WritePart:
    """One object's records in a combined write: sObject Collections subrequests `{ref}0`,
    `{ref}1`… of 200 records each (`path` below /services/data/vXX.X/)."""

    sobject: str
    method: str
    path: str
    records: list[dict[str, Any]]
    ref: str


def row_reference(ref: str, index: int) -> str:
    """The reference to the id of the index-th record of the part `ref` (its chunk, its row)."""
    return f"@{{{ref}{index // BATCH_LIMIT}[{index % BATCH_LIMIT}].id}}"


def collections_needed(sizes: Sequence[int]) -> int:
    """sObject Collections subrequests that records in groups of these sizes need."""
    return sum(-(-n // BATCH_LIMIT) for n in sizes)


def resolve_references(record: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    """The record with every value that is exactly a known reference replaced by its id."""
    return {k: ids.get(v, v) if isinstance(v, str) else v for k, v in record.items()}


def chunked(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
