"""`connector import`: archived or exported Jomablue messages through the queue's own engine.

Exit codes (the operator contract, README: "The archive, import and rehearsal"): 0 every line
imported, skipped or quarantined; 75 stopped early (budget, Salesforce unavailable,
--max-messages, a stop signal): a rerun continues where this one stopped; 1 fatal; 2 bad
configuration, bad options or an unreadable SOURCE.
"""

from __future__ import annotations

import asyncio
import sys
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click

from connector import logs
from connector.config import Config
from connector.console import say, summary_level
from connector.importer.archive_queue import HOLD_SECONDS, ArchiveQueue
from connector.importer.filters import FilterError, LineFilter, parse_moment
from connector.importer.source import ArchiveObject, Source, SourceError, open_source
from connector.progress import progress
from connector.runner import EXIT_CONFIG, EXIT_OK, EXIT_STOPPED, Runner, RunResult
from connector.wiring import Wired


@dataclass(frozen=True)
class ImportOptions:
    source: str
    since: str | None = None
    until: str | None = None
    event_id: str | None = None
    dry_run: bool = False
    max_messages: int | None = None


def _refuse(text: str) -> NoReturn:
    """Bad options or an unreadable SOURCE: one line, exit 2."""
    say("error", "import_refused", f"import: {text}")
    sys.exit(EXIT_CONFIG)


def run_import(cfg: Config, config_path: Path, opts: ImportOptions) -> int:
    """The whole command after the configuration loaded: the exit code (the CLI's one mapping
    turns a ConfigError, a state failure or a stop raised here into theirs)."""
    from connector.orchestrate import run_lock

    try:
        line_filter = LineFilter(parse_moment("--since", opts.since), parse_moment("--until", opts.until),
                                 opts.event_id)
    except FilterError as exc:
        _refuse(str(exc))
    if line_filter.since and line_filter.until and line_filter.since >= line_filter.until:
        _refuse("--since must be earlier than --until")
    try:
        source = open_source(opts.source, cfg)
        objects = source.objects()
    except SourceError as exc:
        _refuse(str(exc))
    if not objects:
        _refuse(f"{opts.source}: no object to read there (check the bucket and prefix)")
    # One writer per SQLite store, as for `connector run` (an import writes the same state).
    with nullcontext() if opts.dry_run else run_lock(cfg):
        return _wired_import(cfg, config_path, opts, source, objects, line_filter)


def _wired_import(cfg: Config, config_path: Path, opts: ImportOptions, source: Source,
                  objects: list[ArchiveObject], line_filter: LineFilter) -> int:
    from connector.orchestrate import finish_run, preflight_or_stop
    from connector.redact import redactor_for
    from connector.state_failures import store_location
    from connector.wiring import wire

    wired = wire(cfg, dry_run=opts.dry_run)
    run_id = wired.state.start_run()
    logs.set_redactor(redactor_for(cfg, wired.state))
    queue, todo = archive_queue(wired, source, objects, line_filter, dry_run=opts.dry_run)
    stopped = preflight_or_stop(wired, run_id, store_location(cfg.state))
    if stopped is not None:
        return stopped
    total = sum(o.size or 0 for o in todo) if all(o.size is not None for o in todo) else None
    log = logs.get()
    log.info("import_start", source=opts.source, objects=len(objects),
             skipped_finished_objects=len(objects) - len(todo), filters=line_filter.scope or None, dry_run=opts.dry_run)
    with progress("import", total, unit="bytes") as bar:
        def on_batch(counts: Any) -> None:
            bar.update(queue.bytes_read, messages=sum(counts.values()), calls=wired.gateway.stats.calls)

        runner = import_runner(wired, queue, max_messages=opts.max_messages, config_path=str(config_path),
                               on_batch=on_batch)

        async def go() -> RunResult:
            runner.install_signals()
            return await runner.run()

        result = asyncio.run(go())
        bar.update(queue.bytes_read, messages=sum(result.counts.values()), calls=result.api_calls)
    if result.exit_code == EXIT_OK and not queue.exhausted:
        result.exit_code = EXIT_STOPPED
        result.reason = "stopped before the end of the source; run the same import again to continue"
    rate = round(sum(result.counts.values()) / result.seconds, 1) if result.seconds else None
    summary = {**result.summary(), "source": opts.source, "objects": len(objects),
               "skipped_finished_objects": len(objects) - len(todo), **queue.counts, "messages_per_second": rate}
    getattr(log, summary_level(result.exit_code))("import_summary", **summary)
    finish_run(wired, run_id, result.exit_code, summary)
    _report(result, summary, opts.dry_run)
    return result.exit_code


def archive_queue(wired: Wired, source: Source, objects: list[ArchiveObject], line_filter: LineFilter, *,
                  dry_run: bool) -> tuple[ArchiveQueue, list[ArchiveObject]]:
    """The archive as a queue, and the objects it will read (those not finished before)."""
    # Finished means "applied under this mapping": after a mapping change every object is read
    # again (and re-applied, as the engine's unchanged check includes the mapping's version).
    unfiltered = f"mapping={wired.mappings.version}"
    scope = ";".join(p for p in (unfiltered, line_filter.scope) if p)
    finished = wired.state.finished_imports([scope, unfiltered])
    todo = [o for o in objects if o.uri not in finished]
    record = None if dry_run else (lambda uri, lines: wired.state.put_finished_import(uri, scope, lines))
    return ArchiveQueue(source, todo, line_filter, record), todo


def import_runner(wired: Wired, queue: ArchiveQueue, *, max_messages: int | None = None,
                  config_path: str = "CONFIG", on_batch: Any = None) -> Runner:
    """The queue's own Runner over the archive, as `run --drain` drives it (also the bench's)."""
    sqs = wired.cfg.sqs.model_copy(update={"visibility_timeout": HOLD_SECONDS, "wait_seconds": 0})
    return Runner(wired.engine, queue, sqs, drain=True, max_messages=max_messages, config_path=config_path,
                  on_batch=on_batch)


def _report(result: RunResult, summary: dict[str, Any], dry_run: bool) -> None:
    """What a person at a terminal reads (the JSON summary line carries it for log collectors)."""
    counts = ", ".join(f"{n:,} {k}" for k, n in sorted(result.counts.items())) or "no message"
    if dry_run:
        for key, label, lines in result.plans:
            click.echo(f"{key}: {label}: " + "; ".join(lines))
    if not sys.stderr.isatty():
        return
    click.echo(f"import{' (dry run: nothing written, nothing recorded)' if dry_run else ''}: {counts}; "
               f"{summary.get('filtered_out', 0):,} filtered out; {summary['skipped_finished_objects']:,} of "
               f"{summary['objects']:,} objects skipped as finished; {result.api_calls:,} Salesforce API call(s)",
               err=True)
    for note in result.notes:
        click.echo(note, err=True)
    if result.reason:
        click.echo(f"stopped: {result.reason}", err=True)
