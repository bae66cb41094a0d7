"""The `connector` command line. Thin: parse options, call wiring, map errors to exit codes.

Exit codes (operator-contract.md): 0 ok, 1 fatal / drift / still failing, 2 bad config or
mapping, 75 stopped early with messages left in the queue.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
import psycopg

from connector import __version__, logs
from connector.config import Config, load_config
from connector.errors import ConfigError, FatalError, StopRun

CONFIG_OPTION = click.option(
    "--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="The connector's YAML configuration file.")


def _load(config_path: Path, offline: bool = False) -> Config:
    """The configuration, or exit 2. `offline`: the command never calls Salesforce, so its
    credentials (and their environment variables) are not needed."""
    try:
        return load_config(config_path, offline=offline)
    except ConfigError as exc:
        _config_errors(exc, prefix="config error: ")


def _config_errors(exc: ConfigError, prefix: str = "") -> NoReturn:
    for p in exc.problems:
        _say("error", "config_error", f"{prefix}{p}")
    sys.exit(2)


def _say(level: str, event: str, text: str, **fields: Any) -> None:
    """A line for the operator on stderr: plain text on a terminal, else a JSON log line at `level`
    (stderr carries JSON lines only, when it is not a terminal: operator-contract.md, Logs)."""
    if sys.stderr.isatty():
        click.echo(text, err=True)
    else:
        getattr(logs.get(), level)(event, reason=text, **fields)


# -- exit codes for failures around a run (issue 11) ---------------------------------------------
# The state store is an operational resource like Salesforce, not configuration: a file that
# cannot be opened, read or migrated (permissions, a full disk, not a database) is a fatal error
# (exit 1) for every command, with one line that names the path; the configuration that points at
# it was valid. PostgreSQL errors join this tuple when the PostgreSQL store lands.
STATE_ERRORS: tuple[type[BaseException], ...] = (OSError, sqlite3.Error, psycopg.Error)


def _fatal(message: str, **fields: Any) -> NoReturn:
    """One clear line on stderr, exit 1: plain text on a terminal, else an `error` JSON log line."""
    if sys.stderr.isatty():
        click.echo(f"fatal: {message}", err=True)
    else:
        logs.get().error("fatal", reason=message, **fields)
    sys.exit(1)


def _state_failure(cfg: Config, exc: BaseException) -> NoReturn:
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    _fatal(f"cannot open the state store at {cfg.state.path}: {detail}", state=str(cfg.state.path))


def _summary_level(exit_code: int) -> str:
    """run_summary's level: error for a fatal run, warning when messages were left queued."""
    return {0: "info", 75: "warning"}.get(exit_code, "error")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="connector")
def main() -> None:
    """Keep Salesforce in step with Jomablue: SQS in, Salesforce out.

    Example:

        connector run --config config.yaml --drain
    """
    logs.configure()


@main.command()
@CONFIG_OPTION
@click.option("--drain", is_flag=True, help="Stop once the queue is empty (the scheduled-container mode).")
@click.option("--max-messages", type=click.IntRange(min=1), help="Stop after receiving this many messages.")
@click.option("--max-seconds", type=click.FloatRange(min=0), help="Stop after this many seconds.")
@click.option("--dry-run", is_flag=True, help="Read and plan; print what would be written; write and delete nothing.")
def run(config_path: Path, drain: bool, max_messages: int | None, max_seconds: float | None, dry_run: bool) -> None:
    """Consume the queue and sync to Salesforce.

    Without --drain it keeps polling until SIGTERM/SIGINT, then finishes or releases the
    messages it holds and exits 0. Exit 75: stopped early with messages left in the queue
    (Salesforce unavailable, daily API budget reached).

    Example:

        connector run --config /config/config.yaml --drain --max-seconds 600
    """
    cfg = _load(config_path)
    # -- one run per SQLite state store (issue 11): a second one waits, then exits 75 ----------
    from connector.state.sqlite import RunLock

    run_lock = RunLock(cfg.state.path)
    try:
        if getattr(cfg.state, "url", None) is None and str(cfg.state.path) != ":memory:":  # PostgreSQL: replicas
            run_lock.acquire(cfg.state.lock_wait_seconds)
    except StopRun as exc:
        logs.get().warning("run_locked", reason=str(exc))
        click.echo(f"stopped: {exc}", err=True)
        sys.exit(75)
    except OSError as exc:
        click.echo(f"fatal: cannot open the state store at {cfg.state.path} (its run lock): {exc}", err=True)
        sys.exit(1)
    # ----------------------------------------------------------------------------------------
    try:
        _run_holding_the_lock(cfg, config_path, drain, max_messages, max_seconds, dry_run)
    finally:
        run_lock.release()   # also when the command runs inside another process (tests, embedding)


def _run_holding_the_lock(cfg: Config, config_path: Path, drain: bool, max_messages: int | None,
                          max_seconds: float | None, dry_run: bool) -> None:
    from connector.redact import redactor_for
    from connector.runner import Runner
    from connector.wiring import build_queue, wire

    try:
        wired = wire(cfg, dry_run=dry_run)
        run_id = wired.state.start_run()
    except ConfigError as exc:
        _config_errors(exc)
    except STATE_ERRORS as exc:
        _state_failure(cfg, exc)
    logs.set_redactor(redactor_for(cfg, wired.state))
    _preflight_or_exit(wired, run_id)
    runner = Runner(wired.engine, build_queue(cfg), cfg.sqs, drain=drain, max_messages=max_messages,
                    max_seconds=max_seconds, config_path=str(config_path))

    async def go() -> Any:
        from connector.state.upkeep import prune_periodically

        runner.install_signals()
        # Outcome rows older than state.keep_days go, at start and every hour (not in a dry run).
        upkeep = None if dry_run else asyncio.create_task(prune_periodically(wired.state, cfg.state.keep_days))
        try:
            # A stored "budget spent" is looked at again once, when there is work (Runner._budget_allows).
            return await runner.run()
        finally:
            if upkeep:
                upkeep.cancel()

    log = logs.get()
    try:
        result = asyncio.run(go())
    except ConfigError as exc:
        # The org refuses what the mapping writes (found while writing): the batch was
        # released, every message stays queued; same exit as a bad mapping at start-up.
        wired.state.finish_run(run_id, 2, {"exit_code": 2, "reason": "; ".join(exc.problems)})
        _config_errors(exc)
    except STATE_ERRORS as exc:
        _state_failure(cfg, exc)
    except Exception as exc:  # noqa: BLE001 - a defect: say so at level error, with the traceback, exit 1
        log.exception("run_failed", reason=f"{type(exc).__name__}: {exc}"[:500])
        sys.exit(1)
    summary = result.summary()
    getattr(log, _summary_level(result.exit_code))("run_summary", **summary)
    if dry_run:
        for item in wired.engine.writer.planned:
            click.echo(json.dumps(item, ensure_ascii=False, default=str))
        for key, label, lines in result.plans:
            click.echo(f"{key}: {label}: " + "; ".join(lines))
        click.echo("dry run: " + ", ".join(f"{n:,} {k}" for k, n in sorted(result.counts.items()))
                   + f"; {result.api_calls:,} read calls to Salesforce, nothing written, nothing deleted")
    wired.state.finish_run(run_id, result.exit_code, summary)
    if sys.stderr.isatty():   # the summary line carries both for log collectors
        for note in result.notes:
            click.echo(note, err=True)
        if result.reason:
            click.echo(f"stopped: {result.reason}", err=True)
    sys.exit(result.exit_code)


def _preflight_or_exit(wired: Any, run_id: int) -> None:
    """Check the mapping against the org's describes before taking any message (issue 9).

    Exit 2 naming file:line on an error, 75 when the org cannot be reached or the budget is
    spent, 1 when Salesforce refuses the login or the describe; in every case no message was
    received, and the run's summary says why.
    """
    from connector.preflight import preflight

    def end(code: int, reason: str) -> NoReturn:
        summary = {"exit_code": code, "counts": {}, "reason": reason, "phase": "preflight"}
        getattr(logs.get(), _summary_level(code))("run_summary", **summary)
        wired.state.finish_run(run_id, code, summary)
        if sys.stderr.isatty():
            click.echo(f"stopped before taking messages: {reason}", err=True)
        sys.exit(code)

    async def check() -> Any:

        await wired.gateway.recheck_spent_budget()    # a stored "spent" reading is looked at again once
        return await preflight(wired.gateway, wired.state, wired.mappings)

    try:
        report = asyncio.run(check())
    except StopRun as exc:
        end(75, str(exc))
    except FatalError as exc:
        end(1, f"preflight could not read the org: {exc}")
    for problem in report.problems:
        _say("warning" if problem.severity != "error" else "error", "preflight", f"preflight: {problem}")
    if report.errors:
        end(2, f"preflight: {len(report.errors)} error(s) against the org's describe; no message was taken "
               "(fix the mapping or the org, then run again)")


@main.command()
@CONFIG_OPTION
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def status(config_path: Path, fmt: str) -> None:
    """Counts by outcome, queue and dead-letter queue depth, quarantined messages, the last runs
    and the API usage seen. Needs no Salesforce credentials.

    Example:

        connector status --config config.yaml --format json
    """
    from connector.console import status_doc, status_table

    cfg = _load(config_path, offline=True)
    try:
        state, redactor = _offline_state(cfg)   # the SQLite file, or the PostgreSQL store of state.url
        doc = status_doc(cfg, state, redactor)
    except (*STATE_ERRORS, ValueError) as exc:    # ValueError: a run summary that is not JSON
        _state_failure(cfg, exc)
    if fmt == "json":
        click.echo(json.dumps(doc, ensure_ascii=False, default=str))
        return
    for line in status_table(doc):
        click.echo(line)


def _offline_state(cfg: Config) -> tuple[Any, Any]:
    """The state store and the redactor, for commands that only read and manage local state."""
    from connector.redact import redactor_for
    from connector.wiring import open_store

    try:
        state = open_store(cfg)    # the SQLite file, or the PostgreSQL store of state.url
        redactor = redactor_for(cfg, state)
    except STATE_ERRORS as exc:
        _state_failure(cfg, exc)
    logs.set_redactor(redactor)
    return state, redactor


# -- quarantine: look at quarantined messages, discard one for good ------------------------------
@main.group()
def quarantine() -> None:
    """Look at quarantined messages; discard one that can never succeed (kept as an audit row).

    Example:

        connector quarantine list --config config.yaml
    """


@quarantine.command("list")
@CONFIG_OPTION
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def quarantine_list(config_path: Path, fmt: str) -> None:
    """Every quarantined message: id, what it is about, attempts, last seen, reason.

    Example:

        connector quarantine list --config config.yaml
    """
    from connector.console import quarantine_row, what

    cfg = _load(config_path, offline=True)
    state, redactor = _offline_state(cfg)
    rows = [quarantine_row(r, redactor) for r in state.quarantined()]
    if fmt == "json":
        click.echo(json.dumps({"quarantined": rows, "dropped": state.dropped()}, ensure_ascii=False, default=str))
        return
    if not rows:
        click.echo("No quarantined messages.")
    for q in rows:
        click.echo(f"{q['message_id']}  {what(q)}  event {q['event_id'] or '-'}  attempts {q['attempts']}  "
                   f"last seen {q['last_seen']}")
        click.echo(f"    {q['reason']}" + (f" [field {q['field']}]" if q["field"] else ""))
    if rows:
        click.echo(f"{len(rows)} quarantined. Look at one: connector quarantine show ID --config {config_path}")


@quarantine.command("show")
@click.argument("message_id")
@CONFIG_OPTION
@click.option("--reveal", is_flag=True, help="Show the body as stored even when personal data is redacted.")
def quarantine_show(message_id: str, config_path: Path, reveal: bool) -> None:
    """The stored body of one quarantined message and every reason it was quarantined for.

    Exit 1 when no quarantined message has that id.

    Example:

        connector quarantine show 3f1c2a9e-8d4b-5c6e-9f01-2a3b4c5d6e7f --config config.yaml
    """
    from connector.console import pretty_body, what

    cfg = _load(config_path, offline=True)
    state, redactor = _offline_state(cfg)
    rows = state.quarantined([message_id])
    if not rows:
        click.echo(f"{message_id}: not a quarantined message (see: connector quarantine list)", err=True)
        sys.exit(1)
    r = rows[0]
    click.echo(f"Message     {r['message_key']}")
    click.echo(f"About       {what(r)}" + (f" in event {r['event_id']}" if r["event_id"] else ""))
    origin = r["sqs_message_id"] or "-"     # an imported line's origin: <object uri>#L<line> (issue 20)
    click.echo(f"{'Origin' if '#L' in origin else 'SQS id'}      {origin}")
    click.echo(f"Attempts    {r['attempts']} (first {r['first_seen']}, last {r['last_seen']})")
    history = json.loads(r["reasons"]) if r.get("reasons") else []
    if not history:
        history = [{"at": r["last_seen"], "reason": r["reason"], "field": r["field"]}]
    click.echo("Reasons")
    for h in history:
        click.echo(f"  {h['at']}  {redactor.text(h['reason'])}" + (f"  [field {h['field']}]" if h.get("field") else ""))
    if r.get("detail"):
        click.echo(f"Detail      {redactor.text(r['detail'])}")
    body = r["body"] or ""
    click.echo("Body" + (" (personal data redacted; --reveal shows it as stored)" if redactor.enabled and not reveal
                         else ""))
    click.echo(pretty_body(body if reveal else (redactor.body(body) or "")))
    click.echo(f"\nReplay it: connector replay --config {config_path} --message-id {r['message_key']}")
    click.echo(f"Discard it: connector quarantine drop {r['message_key']} --reason TEXT --config {config_path}")


@quarantine.command("drop")
@click.argument("message_id")
@click.option("--reason", required=True, help="Why it is discarded (kept in the audit row).")
@CONFIG_OPTION
def quarantine_drop(message_id: str, reason: str, config_path: Path) -> None:
    """Discard a quarantined message for good: it leaves `replay --all` and the quarantine count;
    an audit row keeps who (the OS user), why and when. Exit 1 when no quarantined message has that id.

    Example:

        connector quarantine drop sha256:9f86d08… --reason "test message from the vendor" --config config.yaml
    """
    import getpass

    cfg = _load(config_path, offline=True)
    state, _redactor = _offline_state(cfg)
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    audit = state.drop_quarantined(message_id, reason=reason, who=who)
    if audit is None:
        click.echo(f"{message_id}: not a quarantined message (see: connector quarantine list)", err=True)
        sys.exit(1)
    logs.get().info("quarantine_dropped", message_id=message_id, dropped_by=who, reason=reason)
    click.echo(f"{message_id}: dropped by {who} at {audit['dropped_at']} ({reason})")


REPLAY_STEP = 500   # messages a replay batch takes (progress is shown between batches)


@main.command()
@CONFIG_OPTION
@click.option("--all", "all_", is_flag=True, help="Replay every quarantined message.")
@click.option("--message-id", "message_ids", multiple=True, help="A quarantined message id (repeatable).")
def replay(config_path: Path, all_: bool, message_ids: tuple[str, ...]) -> None:
    """Re-process quarantined messages after a mapping or data fix.

    Exit 0 when all of them synced (or were skipped), 1 when some still fail.

    Example:

        connector replay --config config.yaml --message-id 3f1c2a9e-8d4b-5c6e-9f01-2a3b4c5d6e7f
    """
    from connector.redact import redactor_for
    from connector.sync.model import Inbound
    from connector.wiring import wire

    if not all_ and not message_ids:
        raise click.UsageError("give --all or at least one --message-id")
    cfg = _load(config_path)
    try:
        wired = wire(cfg)
        rows = wired.state.quarantined(None if all_ else list(message_ids))
    except ConfigError as exc:
        _config_errors(exc)
    except STATE_ERRORS as exc:
        _state_failure(cfg, exc)
    redactor = redactor_for(cfg, wired.state)
    logs.set_redactor(redactor)
    missing = set(message_ids) - {r["message_key"] for r in rows}
    for m in sorted(missing):
        click.echo(f"{m}: not a quarantined message", err=True)
    inbounds = [Inbound(handle=r["message_key"], body=r["body"] or "", sqs_message_id=r["sqs_message_id"] or "")
                for r in rows]
    try:
        async def go() -> Any:
            from connector.progress import in_steps

            await wired.gateway.recheck_spent_budget()
            return await in_steps("replay", inbounds, REPLAY_STEP, wired.engine.process)   # a bar, or log lines

        outcomes = asyncio.run(go()) if inbounds else []
    except STATE_ERRORS as exc:
        _state_failure(cfg, exc)
    except StopRun as exc:
        click.echo(f"stopped: {exc}", err=True)
        sys.exit(75)
    except FatalError as exc:
        click.echo(f"fatal: {exc}", err=True)
        sys.exit(1)
    failing = 0
    for ib, o in zip(inbounds, outcomes, strict=True):
        click.echo(f"{ib.handle}: {o.status}" + (f" ({redactor.text(o.reason)})" if o.reason else ""))
        failing += o.status in ("quarantined", "retry")
    sys.exit(1 if failing or missing else 0)


@main.command("import")
@CONFIG_OPTION
@click.option("--from", "source", required=True, help="s3://BUCKET/PREFIX (the SNS archive) or a .jsonl[.gz] file.")
@click.option("--since", help="Only messages at or after this ISO-8601 time (envelope Timestamp, else generated_at).")
@click.option("--until", help="Only messages before this ISO-8601 time.")
@click.option("--event", "event_id", help="Only this Jomablue event id (e.g. acme/event/521).")
@click.option("--dry-run", is_flag=True, help="Read and plan; write nothing, record nothing.")
@click.option("--max-messages", type=click.IntRange(min=1), help="Stop after this many messages (a rerun continues).")
def import_(config_path: Path, source: str, since: str | None, until: str | None, event_id: str | None,
            dry_run: bool, max_messages: int | None) -> None:
    """Run archived or exported Jomablue messages through the same engine as the queue.

    Resumable: a second run skips the objects the first finished. Exit 75: stopped early.

    Example:

        connector import --config config.yaml --from s3://acme-jomablue-archive/sns/2026/11/ --since 2026-11-23
    """
    from connector.importer import ImportOptions, run_import

    run_import(_load(config_path), config_path, ImportOptions(source, since, until, event_id, dry_run, max_messages))


@main.command()
@CONFIG_OPTION
@click.option("--event", "event_id", help="Only this Jomablue event id (e.g. acme/event/521).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "html"]), default="table", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the report here instead of stdout.")
@click.option("--fix", is_flag=True, help="Repair what drifted (within the API budget) and report what could not be.")
def reconcile(config_path: Path, event_id: str | None, fmt: str, output: Path | None, fix: bool) -> None:
    """Compare what the connector synced with what Salesforce holds.

    Exit 0 when nothing drifted (or everything was fixed), 1 when drift remains.

    Example:

        connector reconcile --config config.yaml --event acme/event/521 --format html --output report.html
    """
    from connector.reconcile import UnknownEvent, render
    from connector.reconcile import reconcile as do_reconcile
    from connector.redact import redactor_for
    from connector.wiring import wire

    cfg = _load(config_path)
    try:
        wired = wire(cfg)
    except ConfigError as exc:
        _config_errors(exc)
    except STATE_ERRORS as exc:
        _state_failure(cfg, exc)
    redactor = redactor_for(cfg, wired.state)
    logs.set_redactor(redactor)

    from connector.reconcile.journal import WriteJournal

    # --fix writes outside a batch: its repairs reach the write journal as Salesforce confirms them.
    wired.gateway.on_written = WriteJournal(wired.state)

    async def go() -> Any:
        from connector.progress import watching

        await wired.gateway.recheck_spent_budget()
        async with watching("reconcile", lambda: wired.gateway.stats.calls, "calls"):   # a bar, or log lines
            return await do_reconcile(wired.gateway, wired.state, wired.mappings, event_id, fix, redactor=redactor)

    try:
        report = asyncio.run(go())
    except UnknownEvent:
        known = [e["event_id"] for e in wired.state.all_events()]
        click.echo(f"unknown event {event_id!r}: the connector has synced no event with that id"
                   + (f" (known: {', '.join(known[:10])}{' …' if len(known) > 10 else ''})" if known else
                      " (it has synced no event yet)"), err=True)
        sys.exit(2)
    except STATE_ERRORS as exc:
        _state_failure(cfg, exc)
    except (StopRun, FatalError) as exc:
        click.echo(f"cannot reconcile: {exc}", err=True)
        sys.exit(1)
    text = render(report, fmt)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
    else:
        click.echo(text)
    click.echo(f"reconcile: {len(report.findings)} finding(s), {report.unfixed} not fixed, "
               f"{report.api_calls} Salesforce API call(s)" + (f"; report written to {output}" if output else ""),
               err=True)
    sys.exit(1 if report.unfixed else 0)


@main.group()
def mapping() -> None:
    """Work with the YAML field mappings.

    Example:

        connector mapping validate --config config.yaml --against-org
    """


@mapping.command("validate")
@CONFIG_OPTION
@click.option("--against-org", is_flag=True, help="Also check objects, fields, types and picklists against the org's describe.")
def mapping_validate(config_path: Path, against_org: bool) -> None:
    """Check the mappings; print every problem as file:line: message; exit 2 if any is an error.

    Example:

        connector mapping validate --config config.yaml --against-org
    """
    from connector.mapping import validate_mapping_folder
    from connector.wiring import build_gateway

    cfg = _load(config_path, offline=not against_org)
    describe = None
    if against_org:
        gateway = build_gateway(cfg)
        cache: dict[str, Any] = {}

        def describe(sobject: str) -> dict[str, Any] | None:
            if sobject not in cache:
                cache[sobject] = asyncio.run(gateway.describe(sobject))
            return cache[sobject]

    try:
        problems = validate_mapping_folder(cfg.mapping.path, describe)
    except (FatalError, StopRun) as exc:
        click.echo(f"cannot reach the org: {exc}", err=True)
        sys.exit(1)
    for p in problems:
        click.echo(str(p), err=p.severity == "error")
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        click.echo(f"{len(errors)} error(s)", err=True)
        sys.exit(2)
    click.echo("mapping ok" + (" (checked against the org)" if against_org else ""))


@mapping.command("init")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite files that are already there.")
def mapping_init(folder: Path, force: bool) -> None:
    """Copy the shipped mappings (and the examples/ folder) to FOLDER, to edit.

    Refuses to overwrite a file without --force (exit 2). Then point `mapping.path` at FOLDER.

    Example:

        connector mapping init ./mappings && connector mapping validate --config config.yaml
    """
    from connector.mapping import default_mapping_folder

    source = default_mapping_folder()
    examples = source.parent / "examples"
    plan = [(p, folder / p.name) for p in sorted(source.iterdir()) if p.suffix in (".yaml", ".md") and p.is_file()]
    if examples.is_dir():
        plan += [(p, folder / "examples" / p.relative_to(examples)) for p in sorted(examples.rglob("*"))
                 if p.is_file() and p.suffix in (".yaml", ".md")]
    existing = [str(dst) for _, dst in plan if dst.exists()]
    if existing and not force:
        click.echo(f"not writing: {len(existing)} file(s) already there (use --force to overwrite): "
                   + ", ".join(existing[:5]) + (" …" if len(existing) > 5 else ""), err=True)
        sys.exit(2)
    for src, dst in plan:
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(src.read_bytes())
        click.echo(f"wrote {dst}")
    click.echo(f"\nNext: set `mapping: {{path: {folder}}}` in your configuration, edit, then check with "
               "`connector mapping validate --config FILE` and `connector mapping preview --config FILE --message FILE`.")


@mapping.command("preview")
@CONFIG_OPTION
@click.option("--message", "message_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A Jomablue message (raw JSON or an SNS envelope), e.g. copied from `connector quarantine show`.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def mapping_preview(config_path: Path, message_path: Path, fmt: str) -> None:
    """Print, offline, the Salesforce records the mapping would write for one message.

    Exit 2 when the mapping or the message is invalid (the message's problem is named).

    Example:

        connector mapping preview --config config.yaml --message person.json
    """
    from connector.errors import MessageError
    from connector.mapping.preview import as_text, preview
    from connector.payloads import Unrecognised, parse_body
    from connector.wiring import load_mappings

    cfg = _load(config_path, offline=True)
    try:
        mappings = load_mappings(cfg)
    except ConfigError as exc:
        _config_errors(exc)
    try:
        body = message_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        click.echo(f"{message_path}: cannot read the message: {exc}", err=True)
        sys.exit(2)
    try:
        msg = parse_body(body)
    except MessageError as exc:
        click.echo(f"{message_path}: {exc.reason}" + (f" (field {exc.field})" if exc.field else ""), err=True)
        sys.exit(2)
    if isinstance(msg, Unrecognised):
        click.echo(f"{message_path}: resource_type {msg.resource_type!r} is not one the connector syncs "
                   "(event, person, session_participation, lead): it would be skipped", err=True)
        sys.exit(2)
    entries = preview(mappings, msg)
    if not entries:
        click.echo(f"{message_path}: the mapping folder has no {msg.resource_type}.yaml: the message would be skipped",
                   err=True)
        sys.exit(2)
    if fmt == "json":
        click.echo(json.dumps({"resource_type": msg.resource_type, "resource_id": msg.resource_id,
                               "records": entries}, ensure_ascii=False, default=str))
    else:
        click.echo(f"{msg.resource_type} {msg.resource_id} (event {msg.event_id}) would write:\n")
        click.echo(as_text(entries))


@main.command()
@CONFIG_OPTION
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def doctor(config_path: Path, fmt: str) -> None:
    """Check the org before go-live and after every org change; each line ok / warning / error.

    Login and flow, API version, mapped objects and fields (exist, writable, picklist values),
    active duplicate and Lead assignment rules and what the settings do about them, the
    permission set, the daily API allocation. Exit 0 when nothing is an error, 1 otherwise,
    2 for a bad configuration or mapping.

    Example:

        connector doctor --config config.yaml --format json
    """
    from connector.doctor import exit_code, render, run_doctor
    from connector.wiring import build_gateway, load_mappings

    cfg = _load(config_path)
    try:
        mappings = load_mappings(cfg)
    except ConfigError as exc:
        _config_errors(exc)
    checks = run_doctor(cfg, build_gateway(cfg), mappings)
    click.echo(render(checks, fmt))
    sys.exit(exit_code(checks))


# -- sns-filter-policy (deploy/) -------------------------------------------------------------
@main.command("sns-filter-policy")
@CONFIG_OPTION
def sns_filter_policy(config_path: Path) -> None:
    """Print the SNS subscription filter policy for the configured resource types.

    Jomablue sets `resource_type` as an SNS message attribute on every message, so the policy
    uses the default scope (FilterPolicyScope: MessageAttributes) and lists the resource types
    the mappings handle: new kinds of data Jomablue adds later do not reach the queue unannounced.

    Example:

        aws sns set-subscription-attributes --subscription-arn "$SUB" --attribute-name FilterPolicy \
            --attribute-value "$(connector sns-filter-policy --config config.yaml)"
    """
    from connector.wiring import load_mappings

    cfg = _load(config_path)
    try:
        mappings = load_mappings(cfg)
    except ConfigError as exc:
        _config_errors(exc)
    click.echo(json.dumps({"resource_type": sorted(mappings.resources)}))
    click.echo("FilterPolicyScope: MessageAttributes (the default); Jomablue sets resource_type as a "
               "message attribute", err=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8443, show_default=True, type=int)
@click.option("--cert-dir", type=click.Path(file_okay=False, path_type=Path), help="Where to write the CA certificate.")
@click.option("--latency-ms", default=0, show_default=True, type=click.IntRange(min=0), help="Delay added to every API call.")
@click.option("--fail-rate", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Share of API calls answered 503 SERVER_UNAVAILABLE.")
@click.option("--daily-limit", default=100_000, show_default=True, type=click.IntRange(min=1),
              help="The org's daily API allocation (403 REQUEST_LIMIT_EXCEEDED once used up).")
@click.option("--metadata-dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="A Salesforce DX project whose fields the org gets (default: the project's salesforce/).")
def emulator(host: str, port: int, cert_dir: Path | None, latency_ms: int, fail_rate: float, daily_limit: int,
             metadata_dir: Path | None) -> None:
    """Run the bundled Salesforce emulator (HTTPS) for local development, until Ctrl-C.

    Example:

        connector emulator --port 8443 --cert-dir ./emulator-ca --latency-ms 50 --fail-rate 0.05
    """
    import time

    Emulator = _devkit("connector_devkit.emulator", "emulator").Emulator

    emu = Emulator(host=host, port=port, cert_dir=str(cert_dir) if cert_dir else None, daily_limit=daily_limit,
                   metadata_dir=metadata_dir or True).start()
    emu.faults.latency_ms = latency_ms
    if fail_rate:
        emu.faults.fail_rate(fail_rate)
    click.echo(f"Salesforce emulator at {emu.url}")
    click.echo(f"  ca_bundle:     {emu.ca_path}")
    click.echo(f"  login_url:     {emu.url}   (method: client_credentials)")
    click.echo(f"  client_id:     {emu.client_id}")
    click.echo(f"  client_secret: {emu.client_secret}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        emu.stop()


@main.command()
@click.option("--messages", default=None, type=int, help="How many extra person messages to generate (default: the built-in mix).")
def demo(messages: int | None) -> None:
    """The whole pipeline on embedded SQS (moto) and the bundled Salesforce emulator.

    Publishes a realistic mix of Jomablue traffic through SNS into SQS, syncs it to the end
    and prints what landed in Salesforce.

    Example:

        connector demo
    """
    run_demo = _devkit("connector_devkit.demo", "demo").run_demo
    sys.exit(run_demo(extra_people=messages))


def _devkit(module: str, command: str) -> Any:
    """Import a development-kit module, or say which extra brings it (exit 2)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        click.echo(f"`connector {command}` needs the development kit, which is not installed ({exc.name} is "
                   "missing): pip install 'jomablue-salesforce-connector[devkit]' (from a clone: "
                   "pip install '.[devkit]')", err=True)
        sys.exit(2)
