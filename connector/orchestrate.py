"""The commands that write to the state store, as runs: `run`, `replay` and `reconcile --fix`.

Each takes the run lock (one writer per SQLite store: a replay overlapping a scheduled run could
otherwise move a status backwards), opens the store, and for `run` checks the mapping against
the org (preflight) before taking any message, keeps the store pruned (upkeep) while it runs and
prints a dry run's plan. Each returns the command's exit code; what it cannot handle itself
(ConfigError, a store that cannot be opened, StopRun, FatalError) it raises for the CLI's one
error mapping (:func:`connector.cli.exit_codes`).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from connector import logs, wiring
from connector.config import Config
from connector.console import say, summary_level
from connector.errors import ConfigError, FatalError, StopRun
from connector.redact import Redactor, redactor_for
from connector.runner import EXIT_FATAL, EXIT_STOPPED, Runner, RunResult, stop_reason
from connector.state_failures import as_unavailable, is_backend_error, store_location
from connector.wiring import Wired


@contextmanager
def run_lock(cfg: Config) -> Iterator[None]:
    """Hold the store's run guard for the block (a SQLite file: one run at a time, StopRun, exit 75,
    when another run keeps it past `state.lock_wait_seconds`; PostgreSQL is shared by replicas)."""
    from connector.state import run_lock as guard_of

    lock = guard_of(cfg)
    try:
        lock.acquire(cfg.state.lock_wait_seconds)
    except StopRun as exc:
        logs.get().warning("run_locked", reason=str(exc))
        raise
    try:
        yield
    finally:
        lock.release()   # also when the command runs inside another process (tests, embedding)


def _open(cfg: Config, *, dry_run: bool = False) -> tuple[Wired, Redactor]:
    """The wired connector and its redactor, which from now on also applies to every log line."""
    wired = wiring.wire(cfg, dry_run=dry_run)   # looked up at call time: tests swap the queue
    redactor = redactor_for(cfg, wired.state)
    logs.set_redactor(redactor)
    return wired, redactor


# -- run -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunOptions:
    drain: bool = False
    max_messages: int | None = None
    max_seconds: float | None = None
    dry_run: bool = False


def run(cfg: Config, config_path: Path, opts: RunOptions) -> int:
    """`connector run`: the lock, the store, preflight, the runner (with upkeep), the summary."""
    with run_lock(cfg):
        wired, _redactor = _open(cfg, dry_run=opts.dry_run)
        return _Run(cfg, wired, config_path, opts).go()


class _Run:
    def __init__(self, cfg: Config, wired: Wired, config_path: Path, opts: RunOptions) -> None:
        self.cfg, self.wired, self.opts = cfg, wired, opts
        self.location = store_location(cfg.state)
        self.run_id = wired.state.start_run()
        self.runner = Runner(wired.engine, wiring.build_queue(cfg), cfg.sqs, drain=opts.drain,
                             max_messages=opts.max_messages, max_seconds=opts.max_seconds,
                             config_path=str(config_path), state_location=self.location)

    def go(self) -> int:
        stopped = preflight_or_stop(self.wired, self.run_id, self.location)
        if stopped is not None:
            return stopped
        from connector.metrics import RunMetrics  # the listener in service mode; EMF/push at the end

        # A metrics.port already taken is a ConfigError: exit 2, before any message is taken.
        self.runner.metrics = RunMetrics.start(self.cfg, self.wired, self.runner.queue,
                                               service=not (self.opts.drain or self.opts.dry_run))
        try:
            result = asyncio.run(self._loop())
        except ConfigError as exc:
            # The org refuses what the mapping writes (found while writing): the batch was
            # released, every message stays queued; same exit as a bad mapping at start-up.
            finish_run(self.wired, self.run_id, 2, {"exit_code": 2, "reason": "; ".join(exc.problems)})
            raise
        except Exception as exc:  # noqa: BLE001 - a state failure is a stop; anything else a defect
            if not is_backend_error(exc):
                logs.get().exception("run_failed", reason=f"{type(exc).__name__}: {exc}"[:500])
                return EXIT_FATAL
            # A write failed after messages were handled (a full disk): what was committed stays,
            # what was not is still queued. The runner's counts so far go into the summary.
            result = self.runner.result
            result.exit_code, result.reason = EXIT_STOPPED, stop_reason(as_unavailable(exc, self.location))
        summary = result.summary()
        getattr(logs.get(), summary_level(result.exit_code))("run_summary", **summary)
        self.runner.metrics.finish(result)     # run_metrics log line; the EMF record, the Pushgateway push
        if self.opts.dry_run:
            _print_plan(self.wired, result)
        finish_run(self.wired, self.run_id, result.exit_code, summary)
        if sys.stderr.isatty():   # the summary line carries both for log collectors
            for note in result.notes:
                click.echo(note, err=True)
            if result.reason:
                click.echo(f"stopped: {result.reason}", err=True)
        return result.exit_code

    async def _loop(self) -> RunResult:
        from connector.state.upkeep import prune_periodically

        self.runner.install_signals()
        # Outcome rows older than state.keep_days go, at start and every hour (not in a dry run).
        upkeep = None if self.opts.dry_run else asyncio.create_task(
            prune_periodically(self.wired.state, self.cfg.state.keep_days))
        try:
            # A stored "budget spent" is looked at again once, when there is work (Runner._budget_allows).
            return await self.runner.run()
        finally:
            if self.runner.metrics is not None:
                self.runner.metrics.close()    # the loop is over: the listener stops answering
            if upkeep:
                upkeep.cancel()


def preflight_or_stop(wired: Wired, run_id: int, location: str) -> int | None:
    """Check the mapping against the org's describes before taking any message (issue 9); also
    `connector import`'s first step.

    Exit 2 naming file:line on an error, 75 when the org cannot be reached, the budget is spent
    or the state store fails (the describes are cached there), 1 when Salesforce refuses the
    login or the describe; in every case no message was received, and the run's summary says
    why. None: go on.
    """
    from connector.preflight import preflight

    async def check() -> Any:
        await wired.gateway.recheck_spent_budget()    # a stored "spent" reading is looked at again once
        return await preflight(wired.gateway, wired.state, wired.mappings)

    def stop(code: int, reason: str) -> int:
        summary = {"exit_code": code, "counts": {}, "reason": reason, "phase": "preflight"}
        getattr(logs.get(), summary_level(code))("run_summary", **summary)
        finish_run(wired, run_id, code, summary)
        if sys.stderr.isatty():
            click.echo(f"stopped before taking messages: {reason}", err=True)
        return code

    try:
        report = asyncio.run(check())
    except StopRun as exc:
        return stop(EXIT_STOPPED, stop_reason(exc, taken=False))
    except FatalError as exc:
        return stop(EXIT_FATAL, f"preflight could not read the org: {exc}")
    except Exception as exc:  # noqa: BLE001 - only a state failure is handled here
        if not is_backend_error(exc):
            raise
        return stop(EXIT_STOPPED, stop_reason(as_unavailable(exc, location, taken=False)))
    for problem in report.problems:
        say("warning" if problem.severity != "error" else "error", "preflight", f"preflight: {problem}")
    if report.errors:
        return stop(2, f"preflight: {len(report.errors)} error(s) against the org's describe; no message was taken "
                       "(fix the mapping or the org, then run again)")
    return None


def finish_run(wired: Wired, run_id: int, code: int, summary: dict[str, Any]) -> None:
    """Record the run's end; a store that cannot take even that (the disk still full) is logged,
    not raised: the summary line already said what happened."""
    try:
        wired.state.finish_run(run_id, code, summary)
    except Exception as exc:  # noqa: BLE001
        if not is_backend_error(exc):
            raise
        logs.get().warning("run_not_recorded", reason=f"the state store could not record the run's end: {exc}")


def _print_plan(wired: Wired, result: RunResult) -> None:
    """A dry run's output on stdout: each planned write (JSON), each message's plan, one total line."""
    for item in wired.engine.planned_writes:   # every batch's planned writes (the writer's reset per batch)
        click.echo(json.dumps(item, ensure_ascii=False, default=str))
    for key, label, lines in result.plans:
        click.echo(f"{key}: {label}: " + "; ".join(lines))
    click.echo("dry run: " + ", ".join(f"{n:,} {k}" for k, n in sorted(result.counts.items()))
               + f"; {result.api_calls:,} read calls to Salesforce, nothing written, nothing deleted")


# -- replay ----------------------------------------------------------------------------------------
REPLAY_STEP = 500   # messages a replay batch takes (progress is shown between batches)


def replay(cfg: Config, message_ids: list[str] | None) -> int:
    """`connector replay`: re-process quarantined messages (all of them when `message_ids` is None)
    under the run lock. 0 when every one synced or was skipped, 1 when some still fail or are unknown."""
    from connector.sync.model import Inbound

    with run_lock(cfg):
        wired, redactor = _open(cfg)
        rows = wired.state.quarantined(message_ids)
        missing = set(message_ids or ()) - {r["message_key"] for r in rows}
        for m in sorted(missing):
            click.echo(f"{m}: not a quarantined message", err=True)
        inbounds = [Inbound(handle=r["message_key"], body=r["body"] or "", sqs_message_id=r["sqs_message_id"] or "")
                    for r in rows]

        async def go() -> Any:
            from connector.progress import in_steps

            await wired.gateway.recheck_spent_budget()
            return await in_steps("replay", inbounds, REPLAY_STEP, wired.engine.process)   # a bar, or log lines

        outcomes = asyncio.run(go()) if inbounds else []
        # A message recorded under another key than the row replayed (quarantined unparsed, or imported) settles it.
        wired.state.settle_replayed([
            {"message_key": ib.handle, "replayed_as": o.message_key or ib.handle, "outcome": o.label,
             "reason": o.reason, "field": o.field, "resource_type": o.resource_type, "resource_id": o.resource_id,
             "event_id": o.event_id}
            for ib, o in zip(inbounds, outcomes, strict=True)])
    failing = 0
    for ib, o in zip(inbounds, outcomes, strict=True):
        click.echo(f"{ib.handle}: {o.status}" + (f" ({redactor.text(o.reason)})" if o.reason else ""))
        failing += o.status in ("quarantined", "retry")
    return 1 if failing or missing else 0


# -- reconcile -------------------------------------------------------------------------------------
def reconcile(cfg: Config, event_id: str | None, fix: bool) -> Any:
    """`connector reconcile`: the report (a `connector.reconcile` Report). With `fix` it writes to
    Salesforce and the store, so it holds the run lock. An unknown event is a ConfigError (exit 2)."""
    from connector.reconcile import UnknownEvent
    from connector.reconcile import reconcile as do_reconcile
    from connector.reconcile.journal import WriteJournal

    with run_lock(cfg) if fix else nullcontext():
        wired, redactor = _open(cfg)
        # --fix writes outside a batch: its repairs reach the write journal as Salesforce confirms them.
        wired.gateway.on_written = WriteJournal(wired.state, wired.mappings)

        async def go() -> Any:
            from connector.progress import watching

            await wired.gateway.recheck_spent_budget()
            async with watching("reconcile", lambda: wired.gateway.stats.calls, "calls"):   # a bar, or log lines
                return await do_reconcile(wired.gateway, wired.state, wired.mappings, event_id, fix,
                                          redactor=redactor)

        try:
            return asyncio.run(go())
        except UnknownEvent:
            known = [e["event_id"] for e in wired.state.all_events()]
            raise ConfigError([f"unknown event {event_id!r}: the connector has synced no event with that id"
                               + (f" (known: {', '.join(known[:10])}{' …' if len(known) > 10 else ''})" if known
                                  else " (it has synced no event yet)")]) from None
