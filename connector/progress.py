"""Progress people can watch (issue 20): `import`, `replay --all` and `reconcile`.

On a terminal (stderr is a TTY) a tqdm bar on stderr; otherwise a `progress` JSON log line at
most every LOG_EVERY_SECONDS and one at the end, with what a log reader needs to see a long job
move: done, total when known, the rate and the ETA. stdout is left alone either way (reports and
`--format json` documents go there).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from connector import logs

LOG_EVERY_SECONDS = 10.0


class Progress:
    """One job's progress: `update(done)` with the absolute amount done, `close()` at the end."""

    def __init__(self, task: str, total: float | None = None, unit: str = "messages", *,
                 tty: bool | None = None, clock: Callable[[], float] = time.monotonic,
                 log_every: float = LOG_EVERY_SECONDS) -> None:
        self.task = task
        self.total = total
        self.unit = unit
        self.clock = clock
        self.started = clock()
        self.log_every = log_every
        self._last_log = self.started
        self.done: float = 0
        self.extra: dict[str, Any] = {}
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.bar: Any = None
        if self.tty:
            from tqdm import tqdm

            byte_unit = unit == "bytes"
            self.bar = tqdm(total=total, desc=task, unit="B" if byte_unit else f" {unit}",
                            unit_scale=byte_unit, unit_divisor=1024 if byte_unit else 1000,
                            file=sys.stderr, dynamic_ncols=True, leave=True)

    def update(self, done: float, **extra: Any) -> None:
        """`done`: the amount done so far (not an increment); `extra`: shown beside it (counts...)."""
        step = done - self.done
        self.done = done
        self.extra.update(extra)
        if self.bar is not None:
            if extra:
                self.bar.set_postfix(extra, refresh=False)
            self.bar.update(step)
            return
        now = self.clock()
        if now - self._last_log >= self.log_every:
            self._last_log = now
            self._log(now)

    def rate(self, now: float | None = None) -> float:
        seconds = (self.clock() if now is None else now) - self.started
        return self.done / seconds if seconds > 0 else 0.0

    def eta_seconds(self, now: float | None = None) -> float | None:
        rate = self.rate(now)
        if self.total is None or rate <= 0:
            return None
        return max(0.0, (self.total - self.done) / rate)

    def fields(self, now: float | None = None) -> dict[str, Any]:
        """What a progress log line says (also what a test reads)."""
        eta = self.eta_seconds(now)
        return {"task": self.task, "done": round(self.done), "total": None if self.total is None else round(self.total),
                "unit": self.unit, "rate_per_second": round(self.rate(now), 1),
                "eta_seconds": None if eta is None else round(eta), **self.extra}

    def _log(self, now: float, final: bool = False) -> None:
        logs.get().info("progress", **self.fields(now), **({"finished": True} if final else {}))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            return
        self._log(self.clock(), final=True)


@contextmanager
def progress(task: str, total: float | None = None, unit: str = "messages", **kwargs: Any) -> Iterator[Progress]:
    """A Progress that is closed (bar finished, last log line written) however the job ends."""
    p = Progress(task, total, unit, **kwargs)
    try:
        yield p
    finally:
        p.close()


async def in_steps(task: str, items: list[Any], size: int,
                   work: Callable[[list[Any]], Awaitable[list[Any]]]) -> list[Any]:
    """`work` on `items` a slice of `size` at a time (each slice one batch), with progress shown;
    the results in order. `replay --all` uses it: hundreds of messages, minutes of calls."""
    out: list[Any] = []
    with progress(task, len(items)) as p:
        for start in range(0, len(items), size):
            out.extend(await work(items[start:start + size]))
            p.update(len(out))
    return out


@asynccontextmanager
async def watching(task: str, done: Callable[[], float], unit: str, total: float | None = None,
                   every: float = 0.5) -> AsyncIterator[Progress]:
    """Progress of a job that only counts as it goes (`done()`, e.g. the API calls made so far):
    read every `every` seconds while the body runs (`reconcile`: its reads are one long gather)."""
    with progress(task, total, unit) as p:
        async def tick() -> None:
            while True:
                p.update(done())
                await asyncio.sleep(every)

        ticker = asyncio.create_task(tick())
        try:
            yield p
        finally:
            ticker.cancel()
            p.update(done())
