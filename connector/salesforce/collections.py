"""Writing records with sObject Collections: chunks of 200, five chunks to a /composite call,
the rows Salesforce asks to see again sent again (only those), every result kept in order.

- RETRY_LATER rows (a row lock, a trigger's wrapped lock or timeout, a subrequest that failed
  with a 5xx or a concurrency limit) are sent again after a pause, up to the retry policy's
  attempts; what still fails keeps RETRY_LATER (the message waits in the queue).
- RETRY_SMALLER rows (a trigger ran out of SOQL queries or CPU time for the whole collection:
  governor limits count per transaction, Apex Developer Guide "Execution Governors and
  Limits") are sent again in smaller collections, 200 → 50 → 10 → 1; alone and still failing,
  the row's own classification for one record decides (classify.py, ROW_TABLE).
- A subrequest that fails as a whole keeps the other subrequests' results: only its own
  records fail (classify.py, REQUEST_TABLE, subrequest scope). An org-wide answer (storage
  full, the daily budget, a refusal of the mapping) is raised after every result is kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol

from connector.errors import ConnectorError, StorageFull
from connector.salesforce.classify import (
    STORAGE_FULL_REASON,
    Failure,
    Scope,
    Verb,
    classify_request,
    first_error,
    request_error,
)
from connector.salesforce.composite import (
    BATCH_LIMIT,
    COMPOSITE_COLLECTIONS_LIMIT,
    chunked,
    collection_subrequests,
    composite_body,
    subresponses,
)
from connector.salesforce.pacing import CallStats
from connector.salesforce.results import RowAction, RowResult
from connector.salesforce.retry import RetryPolicy

# The smaller collections a RETRY_SMALLER row is sent in, one step below the size it failed in.
SHRINK_STEPS = (50, 10, 1)


class Caller(Protocol):
    def __call__(self, kind: str, method: str, path: str, *, verb: Verb | None = None,
                 **kwargs: Any) -> Awaitable[Any]: ...


def smaller(size: int) -> int | None:
    """The next collection size below `size`, or None when the record already went alone."""
    return next((s for s in SHRINK_STEPS if s < size), None)


@dataclass
class Outcome:
    """Every record's result (in order), and the org-wide stop to raise once they are kept."""

    results: list[RowResult]
    stop: ConnectorError | None = None


class CollectionsWriter:
    def __init__(self, call: Caller, *, api_version: str, write_headers: dict[str, str],
                 policy: RetryPolicy, stats: CallStats) -> None:
        self.call = call
        self.api_version = api_version
        self.write_headers = write_headers
        self.policy = policy
        self.stats = stats

    async def send(self, kind: str, method: str, path: str, records: list[dict[str, Any]],
                   serial: bool) -> Outcome:
        """`serial`: groups one after another, subrequests in order (one Campaign's members
        never contend for its lock, and collation never reorders them)."""
        results: list[RowResult | None] = [None] * len(records)
        cap = [BATCH_LIMIT] * len(records)          # the largest collection each record may go in
        pending = list(range(len(records)))
        stop: ConnectorError | None = None
        lock_round = 0
        while pending:
            chunks = _chunks(pending, cap)
            sent_in = {i: len(chunk) for chunk in chunks for i in chunk}
            groups = chunked(chunks, COMPOSITE_COLLECTIONS_LIMIT)
            if serial:
                answers: list[Any] = []
                for g in groups:
                    answers.append(await _settled(self._group(kind, method, path, records, g, serial)))
                    if _stops(answers[-1]):
                        break         # the rest would be refused alike: not sent, kept queued
            else:
                answers = list(await asyncio.gather(
                    *(self._group(kind, method, path, records, g, serial) for g in groups), return_exceptions=True))
            for answer in answers:
                if isinstance(answer, ConnectorError):
                    stop = stop or answer
                    continue
                if isinstance(answer, BaseException):
                    raise answer
                for chunk, rows, error in answer:
                    stop = stop or error
                    for i, row in zip(chunk, rows, strict=False):
                        results[i] = row
            if stop is None and any(r is not None and r.action is RowAction.ORG_FULL for r in results):
                stop = StorageFull(STORAGE_FULL_REASON, code="STORAGE_LIMIT_EXCEEDED")
            if stop is not None:
                break                 # rows still to retry keep their last result; the run stops
            shrinking: list[int] = []
            locked: list[int] = []
            for i in pending:
                row = results[i]
                if row is None:
                    continue
                if row.action is RowAction.RETRY_SMALLER:
                    nxt = smaller(sent_in[i])
                    if nxt is not None:
                        cap[i] = nxt
                        shrinking.append(i)
                        continue
                    results[i] = row = row.unshrinkable()
                if row.action is RowAction.RETRY_LATER:
                    locked.append(i)
            if locked:
                lock_round += 1
                if lock_round >= self.policy.attempts:
                    locked = []           # they keep RETRY_LATER: their messages wait in the queue
                else:
                    self.stats.retries += 1
                    await self.policy.pause_rows(lock_round - 1)
            pending = sorted(shrinking + locked)
        final = [r if r is not None else RowResult.failed("NO_RESULT", "no result returned") for r in results]
        return Outcome(final, stop)

    async def _group(self, kind: str, method: str, path: str, records: list[dict[str, Any]],
                     group: list[list[int]],
                     serial: bool) -> list[tuple[list[int], list[RowResult], ConnectorError | None]]:
        """One call for up to five chunks: (chunk, its rows, the org-wide error its subrequest raised)."""
        headers = {"headers": dict(self.write_headers)} if self.write_headers else {}
        if len(group) == 1:
            body = {"allOrNone": False, "records": [records[i] for i in group[0]]}
            res = await self.call(kind, method, path, verb=Verb.WRITE, json=body, **headers)
            return [(group[0], _rows(res), None)]
        url = f"/services/data/v{self.api_version}/{path}"
        subs = collection_subrequests(url, method, [[records[i] for i in idx] for idx in group], self.write_headers)
        res = await self.call(f"composite_{kind}", "POST", "composite", verb=Verb.WRITE,
                              json=composite_body(subs, ordered=serial), **headers)
        out: list[tuple[list[int], list[RowResult], ConnectorError | None]] = []
        for idx, (status, body) in zip(group, subresponses(res, len(group), "c"), strict=True):
            if status == 200 and isinstance(body, list):
                out.append((idx, _rows(body), None))
                continue
            code, msg = first_error(body)
            failure = classify_request(status, code, msg, scope=Scope.SUBREQUEST, verb=Verb.WRITE)
            if failure is Failure.RETRY:
                # Its records were not written: sent again with the locked rows (issue #17: a
                # 5xx or a concurrency limit inside a composite is retried as on top).
                row = RowResult.failed(code or f"HTTP_{status}", msg or "subrequest failed",
                                       action=RowAction.RETRY_LATER)
                out.append((idx, [row] * len(idx), None))
            else:
                out.append((idx, [], request_error(failure, f"{kind} in composite", status, code, msg)))
        return out


async def _settled(aw: Awaitable[Any]) -> Any:
    """The awaitable's result, or the ConnectorError it raised (as gather(return_exceptions))."""
    try:
        return await aw
    except ConnectorError as exc:
        return exc


def _stops(answer: Any) -> bool:
    """Whether a group's answer carries an org-wide stop (raised, or one subrequest's)."""
    return isinstance(answer, BaseException) or any(
        error is not None or any(r.action is RowAction.ORG_FULL for r in rows) for _, rows, error in answer)


def _rows(res: Any) -> list[RowResult]:
    return [RowResult.from_json(item) for item in res or []]


def _chunks(pending: list[int], cap: list[int]) -> list[list[int]]:
    """Pending records in chunks no larger than each record's cap (records of one cap together)."""
    by_cap: dict[int, list[int]] = {}
    for i in pending:
        by_cap.setdefault(cap[i], []).append(i)
    return [chunk for size, idx in by_cap.items() for chunk in chunked(idx, size)]

