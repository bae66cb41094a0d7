"""What /healthz and /readyz answer.

Liveness: the consume loop completes an iteration (a receive, maybe a batch) within a bound derived
from the configuration, so a wedged loop (a hung call, a lost connection nobody notices) is
restarted by the orchestrator. A pause the loop takes on purpose (an outage, a spent budget) extends
the bound by its length; a completed Salesforce call counts as progress, so a long batch of many
calls is not mistaken for a wedged one.

Readiness: the state store, SQS and the Salesforce login answer. Each check is cached briefly
(probes come every few seconds; the SQS check is a real request, the login a token request).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connector.config import Config

MARGIN_SECONDS = 30.0


def liveness_bound(cfg: Config) -> float:
    """Seconds one loop iteration may take: the long poll, the batching window, the longest single
    call (Salesforce's timeout, SQS's read timeout: connector/queue.py) and a margin."""
    sqs_read_timeout = max(30, cfg.sqs.wait_seconds + 10)
    return (cfg.sqs.wait_seconds + cfg.sqs.batch_window_seconds
            + max(cfg.salesforce.timeout_seconds, sqs_read_timeout) + MARGIN_SECONDS)


@dataclass
class Liveness:
    bound: float
    clock: Callable[[], float] = time.monotonic
    progress: Callable[[], int] = lambda: 0     # the gateway's call count: a call completed is progress
    _deadline: float = 0.0
    _seen_progress: int = -1
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._deadline = self.clock() + self.bound
        self._seen_progress = self.progress()

    def beat(self, grace: float = 0.0) -> None:
        """An iteration completed; `grace`: the loop now waits this long on purpose (a pause)."""
        with self._lock:
            self._deadline = max(self._deadline, self.clock() + self.bound + grace)

    def check(self) -> str | None:
        """None while alive, else why not."""
        now = self.clock()
        calls = self.progress()
        with self._lock:
            if calls != self._seen_progress:
                self._seen_progress = calls
                self._deadline = max(self._deadline, now + self.bound)
            if now <= self._deadline:
                return None
            return f"the consume loop has not completed an iteration for {now - self._deadline + self.bound:.0f} s " \
                   f"(bound {self.bound:.0f} s)"


@dataclass
class _Cached:
    check: Callable[[], None]
    ttl: float
    at: float = -1e18
    problem: str | None = None


class Readiness:
    """Named checks, each raising when its part cannot be reached; results cached for `ttl` seconds."""

    def __init__(self, checks: dict[str, tuple[Callable[[], None], float]], *,
                 redact: Callable[[str], str] = lambda s: s, clock: Callable[[], float] = time.monotonic) -> None:
        self._checks = {name: _Cached(fn, ttl) for name, (fn, ttl) in checks.items()}
        self._redact = redact
        self._clock = clock
        self._lock = threading.Lock()

    def problems(self) -> dict[str, str]:
        """{part: why} for every part that fails now; empty when ready."""
        out: dict[str, str] = {}
        with self._lock:       # one probe at a time: two scrapes never double the requests
            for name, c in self._checks.items():
                now = self._clock()
                if now - c.at >= c.ttl:
                    try:
                        c.check()
                        c.problem = None
                    except Exception as exc:  # noqa: BLE001 - any failure makes the part unready
                        first = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
                        c.problem = self._redact(f"{type(exc).__name__}: {first}")
                    c.at = now
                if c.problem is not None:
                    out[name] = c.problem
        return out


def _login_check(gateway: Any) -> Callable[[], None]:
    """The Salesforce login works when a call was answered since the last look (the session is
    good: no token request needed); otherwise one token request says (it costs no API call, but
    each one is a login in the org's history, hence the cache)."""
    answered = [-1]

    def check() -> None:
        ok = sum(n for (_kind, status), n in dict(gateway.stats.by_kind_status).items() if status == "2xx")
        if ok > 0 and ok != answered[0]:
            answered[0] = ok
            return
        gateway.tokens.fetch()

    return check


def readiness_for(state: Any, queue: Any, gateway: Any, redact: Callable[[str], str]) -> Readiness:
    """The three parts the contract names: the state store (ping, not cached: it is a local read or
    one round trip), SQS (a GetQueueAttributes, cached 15 s) and the Salesforce login (cached 60 s)."""
    checks: dict[str, tuple[Callable[[], None], float]] = {"state_store": (lambda: state.ping(), 0.0)}
    if hasattr(queue, "depths"):
        checks["sqs"] = (queue.depths, 15.0)
    if getattr(gateway, "tokens", None) is not None:
        checks["salesforce_login"] = (_login_check(gateway), 60.0)
    return Readiness(checks, redact=redact)
