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
from typing import Any

import click

from connector import __version__, logs
from connector.config import Config, load_config
from connector.errors import ConfigError, FatalError, StopRun

CONFIG_OPTION = click.option(
    "--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="The connector's YAML configuration file.")


def _load(config_path: Path) -> Config:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        for p in exc.problems:
            click.echo(f"config error: {p}", err=True)
        sys.exit(2)


def _config_errors(exc: ConfigError) -> None:
    for p in exc.problems:
        click.echo(p, err=True)
    sys.exit(2)


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
    from connector.runner import Runner
    from connector.wiring import build_queue, wire

    cfg = _load(config_path)
    try:
        wired = wire(cfg, dry_run=dry_run)
    except ConfigError as exc:
        _config_errors(exc)
    except (OSError, sqlite3.Error) as exc:
        where = "" if cfg.state.url else f" at {cfg.state.path}"   # a URL is named, redacted, in exc
        click.echo(f"fatal: cannot open the state store{where}: {exc}", err=True)
        sys.exit(1)
    runner = Runner(wired.engine, build_queue(cfg), cfg.sqs, drain=drain, max_messages=max_messages,
                    max_seconds=max_seconds, config_path=str(config_path))
    run_id = wired.state.start_run()

    async def go() -> Any:
        runner.install_signals()
        return await runner.run()

    result = asyncio.run(go())
    summary = result.summary()
    log = logs.get()
    log.info("run_summary", **summary)
    if dry_run:
        for item in wired.engine.writer.planned:
            click.echo(json.dumps(item, ensure_ascii=False, default=str))
    wired.state.finish_run(run_id, result.exit_code, summary)
    for note in result.notes:
        click.echo(note, err=True)
    if result.reason:
        click.echo(f"stopped: {result.reason}", err=True)
    sys.exit(result.exit_code)


@main.command()
@CONFIG_OPTION
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def status(config_path: Path, fmt: str) -> None:
    """Counts by outcome, quarantined messages, the last run and the API usage seen.

    Example:

        connector status --config config.yaml --format json
    """
    from connector.wiring import open_store

    cfg = _load(config_path)
    state = open_store(cfg)   # the SQLite file, or the PostgreSQL store of state.url
    doc = {
        "counts": state.outcome_counts(),
        "quarantined": [
            {"message_id": r["message_key"], "resource_type": r["resource_type"], "resource_id": r["resource_id"],
             "reason": r["reason"], "field": r["field"], "attempts": r["attempts"], "last_seen": r["last_seen"]}
            for r in state.quarantined()
        ],
        "last_run": state.last_run(),
        "api_usage": state.api_usage(),
    }
    if fmt == "json":
        click.echo(json.dumps(doc, ensure_ascii=False, default=str))
        return
    click.echo("Outcomes")
    for k, v in doc["counts"].items():
        click.echo(f"  {k:<28} {v:>8}")
    if not doc["counts"]:
        click.echo("  (no messages yet)")
    click.echo(f"Quarantined: {len(doc['quarantined'])}")
    for q in doc["quarantined"][:50]:
        click.echo(f"  {q['message_id']}  {q['resource_type'] or '-'} {q['resource_id'] or ''}: {q['reason']}")
    lr = doc["last_run"]
    if lr:
        click.echo(f"Last run: #{lr['id']} started {lr['started_at']} finished {lr['finished_at']} exit {lr['exit_code']}")
    usage = doc["api_usage"]
    if usage:
        click.echo(f"API usage seen: {usage['used']}/{usage['max']} at {usage['seen_at']}")


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
    from connector.sync.model import Inbound
    from connector.wiring import wire

    if not all_ and not message_ids:
        raise click.UsageError("give --all or at least one --message-id")
    cfg = _load(config_path)
    try:
        wired = wire(cfg)
    except ConfigError as exc:
        _config_errors(exc)
    rows = wired.state.quarantined(None if all_ else list(message_ids))
    missing = set(message_ids) - {r["message_key"] for r in rows}
    for m in sorted(missing):
        click.echo(f"{m}: not a quarantined message", err=True)
    inbounds = [Inbound(handle=r["message_key"], body=r["body"] or "", sqs_message_id=r["sqs_message_id"] or "")
                for r in rows]
    try:
        outcomes = asyncio.run(wired.engine.process(inbounds)) if inbounds else []
    except StopRun as exc:
        click.echo(f"stopped: {exc}", err=True)
        sys.exit(75)
    except FatalError as exc:
        click.echo(f"fatal: {exc}", err=True)
        sys.exit(1)
    failing = 0
    for ib, o in zip(inbounds, outcomes, strict=True):
        click.echo(f"{ib.handle}: {o.status}" + (f" ({o.reason})" if o.reason else ""))
        failing += o.status in ("quarantined", "retry")
    sys.exit(1 if failing or missing else 0)


@main.command()
@CONFIG_OPTION
@click.option("--event", "event_id", help="Only this Jomablue event id (e.g. acme/event/521).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "html"]), default="table", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the report here instead of stdout.")
@click.option("--fix", is_flag=True, help="Re-push what drifted.")
def reconcile(config_path: Path, event_id: str | None, fmt: str, output: Path | None, fix: bool) -> None:
    """Compare what the connector synced with what Salesforce holds.

    Exit 0 when nothing drifted (or everything was fixed), 1 when drift remains.

    Example:

        connector reconcile --config config.yaml --event acme/event/521 --format html --output report.html
    """
    from connector.reconcile import reconcile as do_reconcile
    from connector.reconcile import render
    from connector.wiring import wire

    cfg = _load(config_path)
    try:
        wired = wire(cfg)
    except ConfigError as exc:
        _config_errors(exc)
    try:
        report = asyncio.run(do_reconcile(wired.gateway, wired.state, wired.mappings, event_id, fix))
    except (StopRun, FatalError) as exc:
        click.echo(f"cannot reconcile: {exc}", err=True)
        sys.exit(1)
    text = render(report, fmt)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
    else:
        click.echo(text)
    sys.exit(1 if report["unfixed"] else 0)


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

    cfg = _load(config_path)
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
def emulator(host: str, port: int, cert_dir: Path | None, latency_ms: int, fail_rate: float, daily_limit: int) -> None:
    """Run the bundled Salesforce emulator (HTTPS) for local development, until Ctrl-C.

    Example:

        connector emulator --port 8443 --cert-dir ./emulator-ca --latency-ms 50 --fail-rate 0.05
    """
    import time

    Emulator = _devkit("connector_devkit.emulator", "emulator").Emulator

    emu = Emulator(host=host, port=port, cert_dir=str(cert_dir) if cert_dir else None, daily_limit=daily_limit).start()
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
