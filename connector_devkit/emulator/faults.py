"""Fault injection for the emulator: outages, row locks, latency, expired sessions, and
/composite run out of order (``composite_reorder = True``: collated subrequests execute in
reverse order, dependencies first, as Salesforce allows when collateSubrequests is true; see
:mod:`.composite`).

Tests and benchmarks drive these to exercise the connector's retry paths. Every method is
thread-safe; the server asks :meth:`Faults.request_fault` once per counted API request and
:meth:`Faults.take_row_lock` once per record row written by a collection call.
"""

from __future__ import annotations

import random
import threading

_DEFAULT_CODES = {500: "UNKNOWN_EXCEPTION", 502: "SERVER_UNAVAILABLE", 503: "SERVER_UNAVAILABLE",
                  504: "SERVER_UNAVAILABLE", 403: "REQUEST_LIMIT_EXCEEDED"}


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.latency_ms = 0
        self.token_generation = 0  # tokens minted under an older generation are expired
        self.clear()

    def clear(self) -> None:
        """Remove every fault (tokens already expired stay expired)."""
        with self._lock:
            self._fail_next = 0
            self._fail_next_status = 503
            self._fail_next_code = "SERVER_UNAVAILABLE"
            self._rate = 0.0
            self._rate_status = 503
            self._rate_code = "SERVER_UNAVAILABLE"
            self._rng = random.Random()
            self._lock_rows = 0
            self._lock_sobject: str | None = None
            self._poison: tuple[str, int, str] | None = None
            self.latency_ms = 0
            self.composite_reorder = False

    def fail_next(self, n: int, status: int = 503, error_code: str | None = None) -> None:
        """The next n API requests answer ``status`` with a Salesforce error body."""
        with self._lock:
            self._fail_next = n
            self._fail_next_status = status
            self._fail_next_code = error_code or _DEFAULT_CODES.get(status, "SERVER_UNAVAILABLE")

    def fail_rate(self, p: float, status: int = 503, seed: int | None = None,
                  error_code: str | None = None) -> None:
        """Each API request fails with probability p (reproducible with ``seed``); 0 turns it off."""
        with self._lock:
            self._rate = p
            self._rate_status = status
            self._rate_code = error_code or _DEFAULT_CODES.get(status, "SERVER_UNAVAILABLE")
            self._rng = random.Random(seed)

    def refuse_requests_containing(self, text: str, status: int = 400, error_code: str = "JSON_PARSER_ERROR") -> None:
        """Every request whose URL or body contains ``text`` fails as a whole (a poison batch:
        a real org answers 400 JSON_PARSER_ERROR for a value it cannot deserialise)."""
        with self._lock:
            self._poison = (text, status, error_code)

    def lock_rows(self, n: int, sobject: str | None = None) -> None:
        """The next n rows written for ``sobject`` (any when None) fail with UNABLE_TO_LOCK_ROW."""
        with self._lock:
            self._lock_rows = n
            self._lock_sobject = sobject

    def expire_tokens(self) -> None:
        """Invalidate every token issued so far; new ones from the token endpoint work."""
        with self._lock:
            self.token_generation += 1

    # ---------------------------------------------------------------- used by the server

    def request_fault(self, request_text: str = "") -> tuple[int, list[dict[str, str]]] | None:
        """(status, body) when this request should fail, else None."""
        with self._lock:
            if self._poison and self._poison[0] in request_text:
                return self._poison[1], [{"message": f"Cannot deserialize the request (injected: {self._poison[0]!r})",
                                          "errorCode": self._poison[2]}]
            if self._fail_next > 0:
                self._fail_next -= 1
                status, code = self._fail_next_status, self._fail_next_code
            elif self._rate > 0 and self._rng.random() < self._rate:
                status, code = self._rate_status, self._rate_code
            else:
                return None
        message = {"SERVER_UNAVAILABLE": "Server temporarily unavailable (injected fault)",
                   "REQUEST_LIMIT_EXCEEDED": "ConcurrentPerOrgLongTxn Limit exceeded."}.get(
                       code, f"{code} (injected fault)")
        return status, [{"message": message, "errorCode": code}]

    def take_row_lock(self, sobject: str) -> bool:
        """True when this row should fail with UNABLE_TO_LOCK_ROW (consumes one)."""
        with self._lock:
            if self._lock_rows > 0 and self._lock_sobject in (None, sobject):
                self._lock_rows -= 1
                return True
            return False
