"""Every Salesforce API call goes through :class:`SalesforceGateway`.

One aiolimiter limiter (`requests_per_second`), one concurrency cap (`max_in_flight`) and one
budget guard (fed by `Sforce-Limit-Info` on every response) sit in front of simple-salesforce.
Failures are classified here, once, into the connector's exception tree:

- transport errors, 5xx, concurrency `REQUEST_LIMIT_EXCEEDED` → TransientError, retried by tenacity
- daily `REQUEST_LIMIT_EXCEEDED` → BudgetExhausted (the run stops, messages stay queued)
- 401 `INVALID_SESSION_ID` → a fresh token where the auth method allows, else SalesforceUnavailable
- any other whole-request failure → FatalError (a mapping naming a missing object, a bug)

Per-record failures inside sObject Collections are not exceptions: they come back as RowResult
with the Salesforce status code, and :func:`row_action` says what the engine should do.
`UNABLE_TO_LOCK_ROW` rows are retried here, only those rows.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Sequence
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
    TransientError,
)
from connector.salesforce.auth import Token, TokenSource

BATCH_LIMIT = 200  # sObject Collections take at most 200 records a call
COMPOSITE_QUERY_LIMIT = 5  # query subrequests in one /composite request
RETRYABLE_ROW_CODES = {"UNABLE_TO_LOCK_ROW"}


@dataclass(frozen=True)
class RowResult:
    """The outcome of one record in a collections call."""

    ok: bool
    id: str | None = None
    created: bool | None = None
    code: str | None = None
    message: str = ""
    fields: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> RowResult:
        if item.get("success"):
            return cls(True, item.get("id"), item.get("created"))
        errs = item.get("errors") or [{}]
        first = errs[0]
        message = first.get("message", "")
        matches = _duplicate_matches(first)
        if matches:
            # A duplicate rule blocked the save: name the records it matched, so an admin can
            # merge them or set the person's organisation_uid, then replay.
            message = f"{message} (matches {', '.join(matches)})"
        return cls(False, item.get("id"), None, first.get("statusCode") or first.get("errorCode"),
                   message, tuple(first.get("fields") or ()))


def _duplicate_matches(error: dict[str, Any]) -> list[str]:
    """Record ids in a DUPLICATES_DETECTED error's duplicateResult."""
    ids: list[str] = []
    for result in (error.get("duplicateResult") or {}).get("matchResults") or []:
        for match in result.get("matchRecords") or []:
            rid = (match.get("record") or {}).get("Id")
            if rid and rid not in ids:
                ids.append(rid)
    return ids


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

    def observe(self, used: int, max_: int) -> None:
        with self._lock:
            self.used, self.max = used, max_

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

    def count(self, kind: str) -> None:
        self.calls += 1
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1


def row_action(code: str | None) -> str:
    """What the engine does with a failed row: retry | converted | duplicate | deleted | reject."""
    if code in RETRYABLE_ROW_CODES:
        return "retry"
    if code == "CANNOT_UPDATE_CONVERTED_LEAD":
        return "converted"
    if code == "DUPLICATE_VALUE":
        return "duplicate"
    if code in ("ENTITY_IS_DELETED",):
        return "deleted"
    return "reject"


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
        self._rps = requests_per_second
        self._max_in_flight = max_in_flight
        self._limiter: AsyncLimiter | None = None
        self._sem: asyncio.Semaphore | None = None
        self._sf: Salesforce | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sf_lock = threading.Lock()
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
                raise BudgetExhausted(f"Salesforce daily API limit exceeded ({msg})") from None
            if code == "REQUEST_LIMIT_EXCEEDED":
                raise TransientError(f"{kind}: {code} {msg}") from None
            raise FatalError(f"{kind} {path}: refused ({code}: {msg})") from None
        except SalesforceGeneralError as exc:
            if exc.status >= 500:
                code, msg = _first_error(exc)
                raise TransientError(f"{kind}: HTTP {exc.status} {code or ''}".strip()) from None
            code, msg = _first_error(exc)
            raise FatalError(f"{kind} {path}: HTTP {exc.status} {code}: {msg}") from None
        except SalesforceError as exc:
            code, msg = _first_error(exc)
            raise FatalError(f"{kind} {path}: HTTP {exc.status} {code}: {msg}") from None
        finally:
            self.stats.count(kind)
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
        """All records of a SOQL query (following nextRecordsUrl), attributes stripped."""
        return await self._drain_pages(await self.call("query", "GET", "query/", params={"q": soql}))

    async def query_many(self, soqls: Sequence[str]) -> list[list[dict[str, Any]]]:
        """Several SOQL queries, five to a `/composite` request: one API call for up to five.

        Salesforce bills a composite request as one call and allows at most five query
        subrequests in it (salesforce-api.md §1). A failed subrequest is classified like a
        failed query.
        """
        if len(soqls) <= 1:
            return [await self.query(q) for q in soqls]
        results: list[list[dict[str, Any]]] = []
        base = f"/services/data/v{self.api_version}"
        for i in range(0, len(soqls), COMPOSITE_QUERY_LIMIT):
            chunk = soqls[i : i + COMPOSITE_QUERY_LIMIT]
            body = {"allOrNone": False, "compositeRequest": [
                {"method": "GET", "url": f"{base}/query/?{urlencode({'q': q})}", "referenceId": f"q{n}"}
                for n, q in enumerate(chunk)]}
            res = await self.call("composite_query", "POST", "composite", json=body)
            by_ref = {r.get("referenceId"): r for r in (res or {}).get("compositeResponse", [])}
            for n, q in enumerate(chunk):
                sub = by_ref.get(f"q{n}") or {}
                status, page = sub.get("httpStatusCode"), sub.get("body")
                if status != 200 or not isinstance(page, dict):
                    code, msg = _first_error_of(page)
                    if status and status >= 500:
                        raise SalesforceUnavailable(f"query in composite: HTTP {status} {code}")
                    raise FatalError(f"query failed: HTTP {status} {code}: {msg} ({q[:120]}…)")
                records = await self._drain_pages(page)
                results.append(records)
        return results

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
            if "404" in str(exc) or "NOT_FOUND" in str(exc):
                return None
            raise

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
        """Send records in chunks of 200; retry locked rows (only those), keep order of results."""
        results: list[RowResult | None] = [None] * len(records)
        pending = list(range(len(records)))
        for attempt in range(self.retry_attempts):
            chunks = [pending[i : i + BATCH_LIMIT] for i in range(0, len(pending), BATCH_LIMIT)]

            async def send(idx: list[int]) -> None:
                body = {"allOrNone": False, "records": [records[i] for i in idx]}
                res = await self.call(kind, method, path, json=body)
                for i, item in zip(idx, res or [], strict=False):
                    results[i] = RowResult.from_json(item)

            if serial:
                for c in chunks:
                    await send(c)
            else:
                await asyncio.gather(*(send(c) for c in chunks))
            pending = [i for i in pending if results[i] is not None and not results[i].ok  # type: ignore[union-attr]
                       and row_action(results[i].code) == "retry"]  # type: ignore[union-attr]
            if not pending:
                break
            self.stats.retries += 1
            await asyncio.sleep(min(self.retry_max_wait, self.retry_base_wait * 2**attempt) * random.uniform(0.5, 1.0))
        return [r if r is not None else RowResult(False, code="NO_RESULT", message="no result returned")
                for r in results]


def _first_error_of(content: Any) -> tuple[str, str]:
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", "")), str(content[0].get("message", ""))
    return "", str(content)[:200]


def _first_error(exc: SalesforceError) -> tuple[str, str]:
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", "")), str(content[0].get("message", ""))
    return "", str(content)[:200]
