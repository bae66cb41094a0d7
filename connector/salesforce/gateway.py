"""Every Salesforce API call goes through :class:`SalesforceGateway`.

One aiolimiter limiter (`requests_per_second`), one concurrency cap (`max_in_flight`) and one
budget guard (fed by `Sforce-Limit-Info` on every response) sit in front of simple-salesforce.
Failures are classified here, once, into the connector's exception tree:

- transport errors, 5xx, concurrency `REQUEST_LIMIT_EXCEEDED` → TransientError, retried by tenacity
- daily `REQUEST_LIMIT_EXCEEDED` → BudgetExhausted (the run stops, messages stay queued)
- 401 `INVALID_SESSION_ID` → a fresh token where the auth method allows, else SalesforceUnavailable
- any other whole-request failure → FatalError (a mapping naming a missing object, a bug)

Per-record failures inside sObject Collections are not exceptions: they come back as RowResult
whose WriteError carries the action the engine takes (connector/salesforce/results.py).
Rows whose action is RETRY_LATER (`UNABLE_TO_LOCK_ROW`) are retried here, only those rows.
"""

from __future__ import annotations

import asyncio
import random
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests
from aiolimiter import AsyncLimiter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from connector.errors import (
    BudgetExhausted,
    FatalError,
    SalesforceUnavailable,
    StopRun,
    TransientError,
)
from connector.salesforce.auth import Token, TokenSource
from connector.salesforce.ids import to18
from connector.salesforce.results import RowAction, RowResult

BATCH_LIMIT = 200  # sObject Collections take at most 200 records a call
COMPOSITE_QUERY_LIMIT = 5  # query subrequests in one /composite request
COMPOSITE_COLLECTIONS_LIMIT = 5  # sObject Collections subrequests in one /composite request
# Salesforce refuses a request line plus headers over 16,384 bytes (414/431, HTML body; Help
# 000386264). A query whose URL-encoded text is longer than this travels in a /composite body.
MAX_GET_QUERY = 12_000


class PinnedSession(requests.Session):
    """A Session whose CA bundle wins over REQUESTS_CA_BUNDLE from the environment.

    requests lets that variable override Session.verify; the configured `ca_bundle` must not be
    silently replaced by whatever the container happens to export.
    """

    def __init__(self, verify: str | bool) -> None:
        super().__init__()
        self.verify = verify
        self._pinned = verify

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[no-untyped-def]
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        settings["verify"] = self._pinned
        return settings


@dataclass
class UsageGuard:
    """The daily API budget: stop taking work once used/max reaches the configured fraction."""

    fraction: float
    used: int | None = None
    max: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # The reading came from the state store (an earlier run), not from Salesforce in this run.
    from_store: bool = False

    def observe(self, used: int, max_: int) -> None:
        with self._lock:
            self.used, self.max = used, max_
            self.from_store = False

    def exhausted(self) -> bool:
        with self._lock:
            return bool(self.max) and self.used is not None and self.used >= self.fraction * self.max  # type: ignore[operator]

    def check(self) -> None:
        if self.exhausted():
            raise BudgetExhausted(
                f"daily API budget reached: {self.used}/{self.max} calls used, "
                f"budget {self.fraction:.0%}; messages stay queued"
            )


@dataclass
class CallStats:
    calls: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    # (kind, HTTP status) -> calls, for the metrics: "2xx" answered, "transport" no HTTP answer.
    by_kind_status: dict[tuple[str, str], int] = field(default_factory=dict)

    def count(self, kind: str, failure: BaseException | None = None) -> None:
        self.calls += 1
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        status = "2xx" if failure is None else str(getattr(failure, "status", None) or "transport")
        self.by_kind_status[(kind, status)] = self.by_kind_status.get((kind, status), 0) + 1


class SalesforceGateway:
    """Async facade over simple-salesforce; the only object that talks to Salesforce."""

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
        self.instance_url = instance_url.rstrip("/")
        self.api_version = api_version
        self.tokens = tokens
        self.session = session
        self.guard = guard
        self.timeout = timeout
        self.retry_attempts = retry_attempts
        self.retry_max_wait = retry_max_wait
        self.retry_base_wait = retry_base_wait
        self.stats = CallStats()
        # Sforce-Auto-Assign / Sforce-Duplicate-Rule-Header on every write (SalesforceConfig.write_headers)
        self.write_headers = dict(write_headers or {})
        self._rps = requests_per_second
        self._max_in_flight = max_in_flight
        self._limiter: AsyncLimiter | None = None
        self._sem: asyncio.Semaphore | None = None
        self._sf: Salesforce | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sf_lock = threading.Lock()
        # Told what every successful write sent: [(18-char id, sobject, fields)]. Wiring connects
        # it to the state store, so reconcile can compare Salesforce with what the connector wrote.
        self.on_written: Callable[[list[tuple[str, str, dict[str, Any]]]], None] | None = None
        # Replicas on one PostgreSQL store: rate and in-flight cap for all of them together
        # (connector/state/shared_limit.py: `async with shared_limit.slot()`); None: local only.
        self.shared_limit = shared_limit

    # -- plumbing ---------------------------------------------------------------------
    def _client(self, renew: bool = False) -> Salesforce:
        with self._sf_lock:
            if self._sf is None or renew:
                token: Token = self.tokens.fetch()
                self._sf = Salesforce(
                    instance_url=token.instance_url or self.instance_url,
                    session_id=token.access_token,
                    version=self.api_version,
                    session=self.session,
                )
            return self._sf

    def _ensure_async_primitives(self) -> None:
        # Created lazily so they bind to the running event loop (a new loop gets new ones).
        loop = asyncio.get_running_loop()
        if self._limiter is None or self._loop is not loop:
            self._loop = loop
            # A bucket of one token per period: a smooth ceiling, no initial burst.
            self._limiter = AsyncLimiter(1, 1.0 / self._rps)
            self._sem = asyncio.Semaphore(self._max_in_flight)

    def _once(self, kind: str, method: str, path: str, **kwargs: Any) -> Any:
        """One HTTP call, classified. Runs in a worker thread."""
        sf = self._client()
        try:
            try:
                result = sf.restful(path, method=method, timeout=self.timeout, **kwargs)
            except SalesforceExpiredSession:
                if not self.tokens.renewable:
                    raise SalesforceUnavailable(
                        "Salesforce rejected the access token (INVALID_SESSION_ID) and the "
                        "access_token auth method cannot renew it; messages stay queued") from None
                sf = self._client(renew=True)
                result = sf.restful(path, method=method, timeout=self.timeout, **kwargs)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise TransientError(f"{kind}: transport error {type(exc).__name__}") from None
        except SalesforceRefusedRequest as exc:
            code, msg = _first_error(exc)
            if code == "REQUEST_LIMIT_EXCEEDED" and "TotalRequests" in msg:
                raise BudgetExhausted(f"Salesforce daily API limit exceeded ({msg})", status=exc.status,
                                      code=code) from None
            if code == "REQUEST_LIMIT_EXCEEDED":
                raise TransientError(f"{kind}: {code} {msg}", status=exc.status, code=code) from None
            raise FatalError(f"{kind} {path}: refused ({code}: {msg})", status=exc.status, code=code) from None
        except SalesforceResourceNotFound as exc:
            code, msg = _first_error(exc)
            raise FatalError(f"{kind} {path}: not found ({code}: {msg})", status=404, code=code or "NOT_FOUND") from None
        except SalesforceGeneralError as exc:
            code, msg = _first_error(exc)
            if exc.status >= 500:
                raise TransientError(f"{kind}: HTTP {exc.status} {code or ''}".strip(), status=exc.status,
                                     code=code) from None
            raise FatalError(f"{kind} {path}: HTTP {exc.status} {code}: {msg}", status=exc.status,
                             code=code) from None
        except SalesforceError as exc:
            code, msg = _first_error(exc)
            raise FatalError(f"{kind} {path}: HTTP {exc.status} {code}: {msg}", status=exc.status,
                             code=code) from None
        finally:
            self.stats.count(kind, sys.exc_info()[1])    # the failure this call raises, if any
        usage = (sf.api_usage or {}).get("api-usage")
        if usage is not None:
            self.guard.observe(int(usage.used), int(usage.total))
        return result

    async def call(self, kind: str, method: str, path: str, *, bypass_guard: bool = False, **kwargs: Any) -> Any:
        """One API call through the limiter, the cap, the budget guard and the retry policy.

        `bypass_guard` is for the one call that asks whether the budget has come back (/limits).
        """
        self._ensure_async_primitives()
        assert self._limiter is not None and self._sem is not None
        if not bypass_guard:
            self.guard.check()
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientError),
            wait=wait_random_exponential(multiplier=self.retry_base_wait, max=self.retry_max_wait),
            stop=stop_after_attempt(self.retry_attempts),
            reraise=False,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if attempt.retry_state.attempt_number > 1:
                        self.stats.retries += 1
                    async with self._sem:
                        if self.shared_limit is not None:
                            async with self.shared_limit.slot():
                                return await asyncio.to_thread(self._once, kind, method, path, **kwargs)
                        await self._limiter.acquire()
                        return await asyncio.to_thread(self._once, kind, method, path, **kwargs)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise SalesforceUnavailable(
                f"Salesforce kept failing after {self.retry_attempts} attempts: {last}; messages stay queued"
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    # -- reads ------------------------------------------------------------------------
    async def query(self, soql: str) -> list[dict[str, Any]]:
        """All records of a SOQL query (following nextRecordsUrl), attributes stripped.

        A long query (past MAX_GET_QUERY URL-encoded) goes as a /composite subrequest, whose
        URL is in the body, as Salesforce's Help 000386264 recommends; same cost: one call.
        """
        if len(urlencode({"q": soql})) > MAX_GET_QUERY:
            return (await self._composite_queries([soql]))[0]
        return await self._drain_pages(await self.call("query", "GET", "query/", params={"q": soql}))

    async def query_many(self, soqls: Sequence[str], include_deleted: bool = False) -> list[list[dict[str, Any]]]:
        """Several SOQL queries, five to a `/composite` request: one API call for up to five.

        Salesforce bills a composite request as one call and allows at most five query
        subrequests in it (salesforce-api.md §1). A failed subrequest is classified like a
        failed query. `include_deleted` uses queryAll: deleted and merged-away records too
        (IsDeleted, MasterRecordId), as long as they are in the Recycle Bin.
        """
        resource = "queryAll" if include_deleted else "query"
        if len(soqls) <= 1 and not include_deleted:
            return [await self.query(q) for q in soqls]
        if len(soqls) == 1 and len(urlencode({"q": soqls[0]})) <= MAX_GET_QUERY:
            return [await self._drain_pages(await self.call(resource, "GET", f"{resource}/", params={"q": soqls[0]}))]
        return await self._composite_queries(soqls, resource)

    async def composite_gets(self, kind: str, paths: Sequence[str], per_call: int,
                             ref: str = "r") -> list[tuple[int | None, Any]]:
        """GET each path (below /services/data/vXX.X/) as a /composite subrequest, `per_call` to a
        request (one API call each); (HTTP status, body) per path, in order."""
        base = f"/services/data/v{self.api_version}/"
        out: list[tuple[int | None, Any]] = []
        for i in range(0, len(paths), per_call):
            chunk = paths[i : i + per_call]
            body = {"allOrNone": False, "compositeRequest": [
                {"method": "GET", "url": base + path, "referenceId": f"{ref}{n}"} for n, path in enumerate(chunk)]}
            res = await self.call(kind, "POST", "composite", json=body)
            by_ref = {r.get("referenceId"): r for r in (res or {}).get("compositeResponse", [])}
            for n in range(len(chunk)):
                sub = by_ref.get(f"{ref}{n}") or {}
                out.append((sub.get("httpStatusCode"), sub.get("body")))
        return out

    async def _composite_queries(self, soqls: Sequence[str], resource: str = "query") -> list[list[dict[str, Any]]]:
        answers = await self.composite_gets("composite_query", [f"{resource}/?{urlencode({'q': q})}" for q in soqls],
                                            COMPOSITE_QUERY_LIMIT, ref="q")
        results: list[list[dict[str, Any]]] = []
        for q, (status, page) in zip(soqls, answers, strict=True):
            if status != 200 or not isinstance(page, dict):
                code, msg = _first_error_of(page)
                if status and status >= 500:
                    raise SalesforceUnavailable(f"query in composite: HTTP {status} {code}", status=status, code=code)
                raise FatalError(f"query failed: HTTP {status} {code}: {msg} ({q[:120]}…)", status=status, code=code)
            results.append(await self._drain_pages(page))
        return results

    async def _composite_collections(self, kind: str, method: str, path: str, records: list[dict[str, Any]],
                                     group: list[list[int]]) -> list[Any]:
        """Several collections chunks in one /composite request: one API call."""
        base = f"/services/data/v{self.api_version}/{path}"
        # Only Accept, Authorization and Content-Type reach subrequests from the top-level
        # request (Composite Subrequest reference): the write headers travel with each one.
        extra = {"httpHeaders": dict(self.write_headers)} if self.write_headers else {}
        body = {"allOrNone": False, "compositeRequest": [
            {"method": method, "url": base, "referenceId": f"c{n}",
             "body": {"allOrNone": False, "records": [records[i] for i in idx]}, **extra}
            for n, idx in enumerate(group)]}
        res = await self.call(f"composite_{kind}", "POST", "composite", json=body)
        by_ref = {r.get("referenceId"): r for r in (res or {}).get("compositeResponse", [])}
        answers = []
        for n in range(len(group)):
            sub = by_ref.get(f"c{n}") or {}
            if sub.get("httpStatusCode") != 200 or not isinstance(sub.get("body"), list):
                raise _subrequest_error(kind, sub.get("httpStatusCode"), sub.get("body"))
            answers.append(sub["body"])
        return answers

    async def _drain_pages(self, page: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            for rec in page.get("records", []):
                rec.pop("attributes", None)
                out.append(rec)
            nxt = page.get("nextRecordsUrl")
            if page.get("done", True) or not nxt:
                return out
            page = await self.call("query", "GET", nxt.split(f"/v{self.api_version}/", 1)[-1])

    async def describe(self, sobject: str) -> dict[str, Any] | None:
        try:
            return await self.call("describe", "GET", f"sobjects/{sobject}/describe/")
        except FatalError as exc:
            if exc.status == 404:    # raised from SalesforceResourceNotFound: the org has no such object
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

    # -- writes (sObject Collections) ---------------------------------------------------
    async def upsert(self, sobject: str, ext_field: str, records: Sequence[dict[str, Any]],
                     serial: bool = False) -> list[RowResult]:
        return await self._collections(
            "collections_upsert", "PATCH", f"composite/sobjects/{sobject}/{ext_field}",
            [{"attributes": {"type": sobject}, **r} for r in records], serial)

    async def update(self, sobject: str, records: Sequence[dict[str, Any]], serial: bool = False) -> list[RowResult]:
        return await self._collections(
            "collections_update", "PATCH", "composite/sobjects",
            [{"attributes": {"type": sobject}, **r} for r in records], serial)

    async def create(self, sobject: str, records: Sequence[dict[str, Any]], serial: bool = False) -> list[RowResult]:
        return await self._collections(
            "collections_create", "POST", "composite/sobjects",
            [{"attributes": {"type": sobject}, **r} for r in records], serial)

    async def delete(self, ids: Sequence[str]) -> list[RowResult]:
        out: list[RowResult] = []
        for i in range(0, len(ids), BATCH_LIMIT):
            chunk = ids[i : i + BATCH_LIMIT]
            res = await self.call("collections_delete", "DELETE", "composite/sobjects",
                                  params={"ids": ",".join(chunk), "allOrNone": "false"})
            out.extend(RowResult.from_json(r) for r in res or [])
        return out

    async def _collections(self, kind: str, method: str, path: str, records: list[dict[str, Any]],
                           serial: bool) -> list[RowResult]:
        """Send records in chunks of 200, up to five chunks to one /composite call; retry locked
        rows (only those); keep the order of results.

        Salesforce bills a /composite request as one call and takes up to five sObject
        Collections subrequests in it (salesforce-api.md §1), so 1,000 records cost one call.
        Subrequests run in order, so one Campaign's members never contend for its lock.
        """
        results: list[RowResult | None] = [None] * len(records)
        pending = list(range(len(records)))
        for attempt in range(self.retry_attempts):
            chunks = [pending[i : i + BATCH_LIMIT] for i in range(0, len(pending), BATCH_LIMIT)]
            groups = [chunks[i : i + COMPOSITE_COLLECTIONS_LIMIT]
                      for i in range(0, len(chunks), COMPOSITE_COLLECTIONS_LIMIT)]

            async def send(group: list[list[int]]) -> None:
                if len(group) == 1:
                    body = {"allOrNone": False, "records": [records[i] for i in group[0]]}
                    extra = {"headers": self.write_headers} if self.write_headers else {}
                    answers = [await self.call(kind, method, path, json=body, **extra)]
                else:
                    answers = await self._composite_collections(kind, method, path, records, group)
                for idx, res in zip(group, answers, strict=True):
                    for i, item in zip(idx, res or [], strict=False):
                        results[i] = RowResult.from_json(item)

            if serial:
                for g in groups:
                    await send(g)
            else:
                await asyncio.gather(*(send(g) for g in groups))
            pending = [i for i in pending
                       if results[i] is not None and results[i].action is RowAction.RETRY_LATER]  # type: ignore[union-attr]
            if not pending:
                break
            self.stats.retries += 1
            await asyncio.sleep(min(self.retry_max_wait, self.retry_base_wait * 2**attempt) * random.uniform(0.5, 1.0))
        final = [r if r is not None else RowResult.failed("NO_RESULT", "no result returned") for r in results]
        if self.on_written is not None:
            self.on_written(_written_rows(records, final))
        return final


def _subrequest_error(kind: str, status: int | None, body: Any) -> Exception:
    """A composite subrequest that failed as a whole, classified like the request it stands for."""
    code, msg = _first_error_of(body)
    if status and status >= 500:
        return SalesforceUnavailable(f"{kind} in composite: HTTP {status} {code}", status=status, code=code)
    if code == "REQUEST_LIMIT_EXCEEDED":
        return BudgetExhausted(f"Salesforce daily API limit exceeded ({msg})", status=status, code=code)
    return FatalError(f"{kind} in composite: HTTP {status} {code}: {msg}", status=status, code=code)


def _written_rows(records: list[dict[str, Any]], results: list[RowResult]) -> list[tuple[str, str, dict[str, Any]]]:
    """What each successful row of a collections call set on its record."""
    rows = []
    for rec, res in zip(records, results, strict=True):
        rid = res.id or rec.get("Id")
        if res.ok and rid:
            rows.append((to18(rid), rec["attributes"]["type"], {k: v for k, v in rec.items()
                                                                if k not in ("attributes", "Id")}))
    return rows


def _first_error_of(content: Any) -> tuple[str, str]:
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", "")), str(content[0].get("message", ""))
    return "", str(content)[:200]


def _first_error(exc: SalesforceError) -> tuple[str, str]:
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", "")), str(content[0].get("message", ""))
    return "", str(content)[:200]
