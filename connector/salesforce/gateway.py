"""Every Salesforce API call goes through :class:`SalesforceGateway`: the facade the rest of the
connector uses. It puts the parts together; each part is its own module:

    transport.py    the TLS session, the token, one HTTP call; MockTransport for unit tests
    pacing.py       one limiter, one in-flight cap, the daily budget guard, call counts
    classify.py     the one table from (status, code, message, context) to an action
    retry.py        the same request again after a TransientError; locked rows again
    paging.py       query pages (nextRecordsUrl), queries too long for a URL
    composite.py    several requests packed into one /composite call, subresponses read back
    collections.py  writes in chunks of 200: rows retried, collections shrunk, results kept
    written.py      the write-journal hook's rows

A whole-request failure becomes the connector's exception (classify.py): TransientError is
retried here, StopRun (BudgetExhausted, StorageFull, SalesforceUnavailable) stops the run with
its messages queued, FatalError stops it (or, when poison, lets the engine split the batch).
Per-record failures are not exceptions: each RowResult carries the RowAction the engine takes.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from typing import Any

import requests

from connector.errors import ConnectorError, FatalError, StopRun
from connector.salesforce.auth import TokenSource
from connector.salesforce.classify import Failure, Scope, Verb, classify_request, first_error, request_error
from connector.salesforce.collections import CollectionsWriter
from connector.salesforce.composite import (
    BATCH_LIMIT,
    COMPOSITE_COLLECTIONS_LIMIT,
    COMPOSITE_QUERY_LIMIT,
    Subresponse,
    WritePart,
    chunked,
    collection_subrequests,
    composite_body,
    get_subrequests,
    resolve_references,
    row_reference,
    subresponses,
)
from connector.salesforce.pacing import CallStats, Pacer, UsageGuard
from connector.salesforce.paging import MAX_GET_QUERY, drain_pages, query_path, too_long_for_a_url
from connector.salesforce.results import RowAction, RowResult
from connector.salesforce.retry import RetryPolicy
from connector.salesforce.transport import PinnedSession, SalesforceClient
from connector.salesforce.written import OnWritten, written_rows

__all__ = ["BATCH_LIMIT", "COMPOSITE_COLLECTIONS_LIMIT", "COMPOSITE_QUERY_LIMIT", "MAX_GET_QUERY", "CallStats",
           "PinnedSession", "RowAction", "RowResult", "SalesforceGateway", "UsageGuard"]


class SalesforceGateway:
    """Async facade over the Salesforce REST API; the only object that talks to Salesforce."""

    def __init__(
        self,
        *,
        instance_url: str,
        api_version: str,
        tokens: TokenSource,
        session: requests.Session,
        requests_per_second: float,
        max_in_flight: int,
        guard: UsageGuard,
        timeout: float = 60,
        retry_attempts: int = 6,
        retry_max_wait: float = 30,
        retry_base_wait: float = 0.5,
        write_headers: dict[str, str] | None = None,
        shared_limit: Any = None,
    ) -> None:
        self.client = SalesforceClient(instance_url=instance_url, api_version=api_version, tokens=tokens,
                                       session=session, timeout=timeout)
        self.api_version = api_version
        self.guard = guard
        self.stats = CallStats()
        self.policy = RetryPolicy(retry_attempts, retry_base_wait, retry_max_wait)
        # Replicas on one PostgreSQL store: rate and in-flight cap for all of them together
        # (connector/state/shared_limit.py); None: local only.
        self.pacer = Pacer(requests_per_second, max_in_flight, shared_limit)
        # Sforce-Auto-Assign / Sforce-Duplicate-Rule-Header on every write (SalesforceConfig.write_headers)
        self.write_headers = dict(write_headers or {})
        self.writes = CollectionsWriter(self.call, api_version=api_version, write_headers=self.write_headers,
                                        policy=self.policy, stats=self.stats)
        # Told what every collections call confirmed: [(18-char id, sobject, fields)]. Wiring connects
        # it to the state store, so reconcile can compare Salesforce with what the connector wrote.
        self.on_written: OnWritten | None = None

    # -- what other modules read ------------------------------------------------------------
    @property
    def instance_url(self) -> str:
        return self.client.instance_url

    @property
    def tokens(self) -> TokenSource:
        return self.client.tokens

    @property
    def session(self) -> requests.Session:
        return self.client.session

    @property
    def shared_limit(self) -> Any:
        return self.pacer.shared_limit

    # -- one call ---------------------------------------------------------------------------
    async def call(self, kind: str, method: str, path: str, *, bypass_guard: bool = False,
                   verb: Verb | None = None, check: Callable[[Any], Any] | None = None, **kwargs: Any) -> Any:
        """One API call through the budget guard, the pacer and the retry policy.

        `bypass_guard` is for the one call that asks whether the budget has come back (/limits).
        `check(result)` runs on every answer and may raise TransientError to have it sent again
        (a composite whose subrequest failed for a moment).
        """
        if not bypass_guard:
            self.guard.check()
        verb = verb or (Verb.READ if method == "GET" else Verb.WRITE)

        async def attempt() -> Any:
            async with self.pacer.slot():
                try:
                    result, usage = await asyncio.to_thread(self.client.request, kind, method, path,
                                                            verb=verb, **kwargs)
                finally:
                    self.stats.count(kind, sys.exc_info()[1])    # the failure this call raises, if any
            if usage is not None:
                self.guard.observe(*usage)
            return check(result) if check is not None else result

        return await self.policy.run(attempt, self.stats)

    # -- reads ------------------------------------------------------------------------------
    async def query(self, soql: str) -> list[dict[str, Any]]:
        """All records of a SOQL query (following nextRecordsUrl), attributes stripped.

        A long query (past MAX_GET_QUERY URL-encoded) goes as a /composite subrequest, whose
        URL is in the body, as Salesforce's Help 000386264 recommends; same cost: one call.
        """
        return (await self.query_many([soql]))[0]

    async def query_many(self, soqls: Sequence[str], include_deleted: bool = False) -> list[list[dict[str, Any]]]:
        """Several SOQL queries, five to a `/composite` request: one API call for up to five
        (composite.py). A failed subrequest is classified like a failed query.
        `include_deleted` uses queryAll: deleted and merged-away records too (IsDeleted,
        MasterRecordId), as long as they are in the Recycle Bin."""
        resource = "queryAll" if include_deleted else "query"
        if not soqls:
            return []
        if len(soqls) == 1 and not too_long_for_a_url(soqls[0]):
            return [await self._drain(await self.call(resource, "GET", f"{resource}/", params={"q": soqls[0]}))]
        return await self._composite_queries(soqls, resource)

    async def composite_gets(self, kind: str, paths: Sequence[str], per_call: int,
                             ref: str = "r") -> list[Subresponse]:
        """GET each path (below /services/data/vXX.X/) as a /composite subrequest, `per_call` to a
        request (one API call each); (HTTP status, body) per path, in order, unclassified.
        Prefer :meth:`get_many`, which classifies each subrequest with the one table."""
        base = f"/services/data/v{self.api_version}/"
        out: list[Subresponse] = []
        for chunk in chunked(paths, per_call):
            res = await self.call(kind, "POST", "composite", verb=Verb.READ,
                                  json=composite_body(get_subrequests(base, chunk, ref)))
            out += subresponses(res, len(chunk), ref)
        return out

    async def get_many(self, kind: str, paths: Sequence[str], per_call: int, ref: str = "r") -> list[Any]:
        """GET each path as a /composite subrequest; the body per path, None where the org has no
        such thing (404). A subrequest that failed for a moment (5xx, concurrency) sends its
        request again; any other failure raises the classified exception."""
        base = f"/services/data/v{self.api_version}/"

        async def one(chunk: list[str]) -> list[Any]:
            def bodies(res: Any) -> list[Any]:
                return _read_bodies(kind, subresponses(res, len(chunk), ref))
            got: list[Any] = await self.call(kind, "POST", "composite", verb=Verb.READ,
                                             json=composite_body(get_subrequests(base, chunk, ref)), check=bodies)
            return got

        # Reads do not depend on each other: the calls go at once, as many as the pacer lets fly
        # (max_in_flight), so a large batch's lookup takes one round trip, not one per five queries.
        answers = await asyncio.gather(*(one(c) for c in chunked(paths, per_call)), return_exceptions=True)
        read: list[list[Any]] = []
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer          # every call finished first: none is left running unread
            read.append(answer)
        return [body for bodies in read for body in bodies]

    async def _composite_queries(self, soqls: Sequence[str], resource: str = "query") -> list[list[dict[str, Any]]]:
        pages = await self.get_many("composite_query", [query_path(resource, q) for q in soqls],
                                    COMPOSITE_QUERY_LIMIT, ref="q")
        results: list[list[dict[str, Any]]] = []
        for q, page in zip(soqls, pages, strict=True):
            if not isinstance(page, dict):
                raise FatalError(f"query failed: no result ({q[:120]}…)", status=404, code="NOT_FOUND")
            results.append(await self._drain(page))
        return results

    async def _drain(self, page: dict[str, Any]) -> list[dict[str, Any]]:
        return await drain_pages(page, self.api_version, lambda path: self.call("query", "GET", path))

    async def describe(self, sobject: str) -> dict[str, Any] | None:
        try:
            described: dict[str, Any] | None = await self.call("describe", "GET", f"sobjects/{sobject}/describe/")
            return described
        except FatalError as exc:
            if exc.status == 404:    # Failure.ABSENT: the org has no such object
                return None
            raise

    async def recheck_spent_budget(self) -> None:
        """The stored reading says the daily budget is spent: spend one /limits call (allowed past
        the guard) to look again before giving up; the org's limit may have been raised, or the
        rolling 24 h window may have moved. A refusal keeps the stored reading."""
        if self.guard.from_store and self.guard.exhausted():
            try:
                await self.limits(bypass_guard=True)
            except StopRun:
                pass

    async def limits(self, bypass_guard: bool = False) -> dict[str, Any]:
        result = await self.call("limits", "GET", "limits/", bypass_guard=bypass_guard)
        daily = (result or {}).get("DailyApiRequests") or {}
        if daily.get("Max"):
            self.guard.observe(int(daily["Max"]) - int(daily.get("Remaining", 0)), int(daily["Max"]))
        return result or {}

    # -- writes (sObject Collections) -------------------------------------------------------
    @staticmethod
    def collections_route(sobject: str, op: str, ext_field: str | None = None) -> tuple[str, str]:
        """(method, path) of the sObject Collections call for an upsert, update or create."""
        if op == "upsert":
            return "PATCH", f"composite/sobjects/{sobject}/{ext_field}"
        return ("PATCH", "composite/sobjects") if op == "update" else ("POST", "composite/sobjects")

    async def upsert(self, sobject: str, ext_field: str, records: Sequence[dict[str, Any]],
                     serial: bool = False) -> list[RowResult]:
        return await self._collections("collections_upsert", "PATCH", f"composite/sobjects/{sobject}/{ext_field}",
                                       sobject, records, serial)

    async def update(self, sobject: str, records: Sequence[dict[str, Any]], serial: bool = False) -> list[RowResult]:
        return await self._collections("collections_update", "PATCH", "composite/sobjects", sobject, records, serial)

    async def create(self, sobject: str, records: Sequence[dict[str, Any]], serial: bool = False) -> list[RowResult]:
        return await self._collections("collections_create", "POST", "composite/sobjects", sobject, records, serial)

    async def delete(self, ids: Sequence[str]) -> list[RowResult]:
        out: list[RowResult] = []
        for chunk in chunked(ids, BATCH_LIMIT):
            res = await self.call("collections_delete", "DELETE", "composite/sobjects",
                                  params={"ids": ",".join(chunk), "allOrNone": "false"})
            out.extend(RowResult.from_json(r) for r in res or [])
        return out

    async def write_together(self, parts: Sequence[WritePart]) -> list[list[RowResult | None]]:
        """Several objects' writes in ONE /composite call (composite.py: at most five collections,
        the caller packs them), later parts naming earlier parts' records by reference. Each
        record's result, in order; None for a record this call did not settle, for the caller to
        send again the ordinary way (which retries, shrinks and classifies): its subrequest failed
        as a whole (a reference to a failed row: 400 PROCESSING_HALTED, or anything else), or its
        row asks to be retried or the org is full. A part's records come back with every reference
        replaced by the id it named (for the write journal and for the caller)."""
        typed = [[{"attributes": {"type": part.sobject}, **r} for r in part.records] for part in parts]
        url = f"/services/data/v{self.api_version}/"
        subs = [sub for part, records in zip(parts, typed, strict=True)
                for sub in collection_subrequests(url + part.path, part.method, chunked(records, BATCH_LIMIT),
                                                  self.write_headers, ref=part.ref)]
        headers: dict[str, Any] = {"headers": dict(self.write_headers)} if self.write_headers else {}
        res = await self.call("composite_write", "POST", "composite", verb=Verb.WRITE,
                              json=composite_body(subs, ordered=True), **headers)
        ids: dict[str, str] = {}
        out: list[list[RowResult | None]] = []
        for part, records in zip(parts, typed, strict=True):
            rows: list[RowResult | None] = []
            answers = subresponses(res, -(-len(records) // BATCH_LIMIT), part.ref)
            for n, (status, body) in enumerate(answers):
                size = len(records[n * BATCH_LIMIT:(n + 1) * BATCH_LIMIT])
                got = [RowResult.from_json(r) for r in body] if status == 200 and isinstance(body, list) else []
                rows += [r if r.action not in _UNSETTLED else None for r in got] + [None] * (size - len(got))
            for i, row in enumerate(rows):
                if row is not None and row.ok and row.id:
                    ids[row_reference(part.ref, i)] = row.id
            records[:] = [resolve_references(r, ids) for r in records]
            part.records[:] = [{k: v for k, v in r.items() if k != "attributes"} for r in records]
            out.append(rows)
        if self.on_written is not None:
            self.on_written([w for records, rows in zip(typed, out, strict=True)
                             for w in written_rows([r for r, x in zip(records, rows, strict=True) if x is not None],
                                                   [x for x in rows if x is not None])])
        return out

    async def _collections(self, kind: str, method: str, path: str, sobject: str,
                           records: Sequence[dict[str, Any]], serial: bool) -> list[RowResult]:
        """Every record's result, in order (collections.py). What Salesforce confirmed goes to the
        write-journal hook before an org-wide stop (StorageFull, a refused subrequest) is raised."""
        typed = [{"attributes": {"type": sobject}, **r} for r in records]
        outcome = await self.writes.send(kind, method, path, typed, serial)
        if self.on_written is not None:
            self.on_written(written_rows(typed, outcome.results))
        if outcome.stop is not None:
            raise outcome.stop
        return outcome.results


# Rows a combined write leaves to the ordinary path, which retries, shrinks or stops the run.
_UNSETTLED = (RowAction.RETRY_LATER, RowAction.RETRY_SMALLER, RowAction.ORG_FULL)


def _read_bodies(kind: str, answers: list[Subresponse]) -> list[Any]:
    """Each subrequest's body (None: 404 on a read), or the classified error of the first that
    failed otherwise (TransientError: the whole composite read is sent again)."""
    out: list[Any] = []
    for status, body in answers:
        if status == 200:
            out.append(body)
            continue
        code, msg = first_error(body)
        failure = classify_request(status, code, msg, scope=Scope.SUBREQUEST, verb=Verb.READ)
        if failure is Failure.ABSENT:
            out.append(None)
            continue
        error: ConnectorError = request_error(failure, f"{kind} in composite", status, code, msg)
        raise error
    return out
