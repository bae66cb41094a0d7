"""The `connector` command line. Thin: parse options, call the orchestration or a reader, map
errors to exit codes in ONE place (:func:`exit_codes`).

Exit codes (the operator contract): 0 ok, 1 fatal / drift / still failing, 2 bad config or
mapping, 75 stopped early with messages left in the queue.

Adding a command: a click function that loads the configuration with `_load`, does its work
inside `with exit_codes(cfg):` (the run-like ones call `connector.orchestrate`, which takes the
run lock when the command writes to the state store) and returns, or `sys.exit`s with its own
code. Import heavy modules inside the function: `connector --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click

from connector import __version__, logs
from connector.config import Config, load_config
from connector.console import say
from connector.errors import ConfigError, FatalError, StateUnavailable, StopRun
from connector.metrics.check import check_options, run_check
from connector.state_failures import is_backend_error, state_failed, store_location

CONFIG_OPTION = click.option(
    "--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="The connector's YAML configuration file.")
FORMAT_OPTION = click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
                             show_default=True)

EXIT_FATAL, EXIT_CONFIG, EXIT_STOPPED = 1, 2, 75


def _load(config_path: Path, offline: bool = False) -> Config:
    """The configuration, or exit 2. `offline`: the command never calls Salesforce, so its
    credentials (and their environment variables) are not needed."""
    with exit_codes(prefix="config error: "):
        return load_config(config_path, offline=offline)


def _fatal(message: str, **fields: Any) -> NoReturn:
    """One clear line on stderr, exit 1: plain text on a terminal, else an `error` JSON log line."""
    if sys.stderr.isatty():
        click.echo(f"fatal: {message}", err=True)
    else:
        logs.get().error("fatal", reason=message, **fields)
    sys.exit(EXIT_FATAL)


@contextmanager
def exit_codes(cfg: Config | None = None, *, prefix: str = "", stop_code: int = EXIT_STOPPED,
               stop_text: str = "stopped", fatal_text: str = "fatal") -> Iterator[None]:
    """The one mapping from what a command raises to its exit code and its one line on stderr.

    - ConfigError: every problem, exit 2 (`prefix` before each).
    - The state store failing (StateUnavailable or a backend's own error): one line naming the
      store actually configured (a PostgreSQL URL with its password masked), exit 1. The store
      is an operational resource like Salesforce, not configuration: the configuration that
      points at it was valid. (A failure while a run holds messages is the run's: exit 75.)
    - StopRun: `stop_text: reason`, exit `stop_code` (75; a command whose contract has no 75 passes 1).
    - FatalError: `fatal_text: reason`, exit 1.
    Anything else is a defect and escapes with its traceback.
    """
    try:
        yield
    except ConfigError as exc:
        for p in exc.problems:
            say("error", "config_error", f"{prefix}{p}")
        sys.exit(EXIT_CONFIG)
    except Exception as exc:
        if cfg is not None and is_backend_error(exc):
            _fatal(state_failed(exc, cfg.state), state=store_location(cfg.state))
        if isinstance(exc, StopRun):
            from connector.runner import stop_reason  # the run's wording (a full org, a full disk)

            say("warning", "stopped", f"{stop_text}: {stop_reason(exc)}")
            sys.exit(stop_code)
        if isinstance(exc, FatalError):
            say("error", "fatal", f"{fatal_text}: {exc}")
            sys.exit(EXIT_FATAL)
        raise


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
@click.option("--dry-run", is_flag=True,
              help="Read and plan; print what would be written; write and delete nothing.")
def run(config_path: Path, drain: bool, max_messages: int | None, max_seconds: float | None, dry_run: bool) -> None:
    """Consume the queue and sync to Salesforce.

    Without --drain it keeps polling until SIGTERM/SIGINT, then finishes or releases the
    messages it holds and exits 0. Exit 75: stopped early with messages left in the queue
    (Salesforce unavailable, daily API budget reached, the org's data storage full).

    Example:

        connector run --config /config/config.yaml --drain --max-seconds 600
    """
    from connector import orchestrate

    cfg = _load(config_path)
    with exit_codes(cfg):
        code = orchestrate.run(cfg, config_path, orchestrate.RunOptions(
            drain=drain, max_messages=max_messages, max_seconds=max_seconds, dry_run=dry_run))
    sys.exit(code)


@main.command()
@CONFIG_OPTION
@FORMAT_OPTION
@check_options
def status(config_path: Path, fmt: str, check: bool, **limits: Any) -> None:
    """Counts by outcome, queue and dead-letter queue depth, quarantined messages, the last runs
    and the API usage seen. Needs no Salesforce credentials.

    Example:

        connector status --config config.yaml --format json
    """
    from connector.console import status_doc, status_table

    cfg = _load(config_path, offline=True)
    with exit_codes(cfg):
        state, redactor = _offline_state(cfg)   # the SQLite file, or the PostgreSQL store of state.url
        if check:   # status --check: a verdict (connector/metrics/check.py)
            sys.exit(run_check(cfg, state, fmt, limits))
        try:
            doc = status_doc(cfg, state, redactor)
        except ValueError as exc:    # a stored run summary that is not JSON: the store is damaged
            raise StateUnavailable(str(exc), cause=str(exc)) from exc
    if fmt == "json":
        click.echo(json.dumps(doc, ensure_ascii=False, default=str))
        return
    for line in status_table(doc):
        click.echo(line)


def _offline_state(cfg: Config) -> tuple[Any, Any]:
    """The state store and the redactor, for commands that only read and manage local state."""
    from connector.redact import redactor_for
    from connector.state import open_state

    with exit_codes(cfg):
        state = open_state(cfg)    # the SQLite file, or the PostgreSQL store of state.url
        redactor = redactor_for(cfg, state)
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
@FORMAT_OPTION
def quarantine_list(config_path: Path, fmt: str) -> None:
    """Every quarantined message: id, what it is about, attempts, last seen, reason.

    Example:

        connector quarantine list --config config.yaml
    """
    from connector.console import quarantine_list_lines, quarantine_row

    cfg = _load(config_path, offline=True)
    state, redactor = _offline_state(cfg)
    with exit_codes(cfg):
        rows = [quarantine_row(r, redactor) for r in state.quarantined()]
        dropped = state.dropped() if fmt == "json" else []
    if fmt == "json":
        click.echo(json.dumps({"quarantined": rows, "dropped": dropped}, ensure_ascii=False, default=str))
        return
    for line in quarantine_list_lines(rows, config_path):
        click.echo(line)


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
    from connector.console import quarantine_show_lines

    cfg = _load(config_path, offline=True)
    state, redactor = _offline_state(cfg)
    with exit_codes(cfg):
        rows = state.quarantined([message_id])
    if not rows:
        click.echo(f"{message_id}: not a quarantined message (see: connector quarantine list)", err=True)
        sys.exit(1)
    for line in quarantine_show_lines(rows[0], redactor, reveal, config_path):
        click.echo(line)


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
    with exit_codes(cfg):
        audit = state.drop_quarantined(message_id, reason=reason, who=who)
    if audit is None:
        click.echo(f"{message_id}: not a quarantined message (see: connector quarantine list)", err=True)
        sys.exit(1)
    logs.get().info("quarantine_dropped", message_id=message_id, dropped_by=who, reason=reason)
    click.echo(f"{message_id}: dropped by {who} at {audit['dropped_at']} ({reason})")


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
    from connector import orchestrate

    if not all_ and not message_ids:
        raise click.UsageError("give --all or at least one --message-id")
    cfg = _load(config_path)
    with exit_codes(cfg):
        code = orchestrate.replay(cfg, None if all_ else list(message_ids))
    sys.exit(code)


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

    cfg = _load(config_path)
    with exit_codes(cfg):
        code = run_import(cfg, config_path, ImportOptions(source, since, until, event_id, dry_run, max_messages))
    sys.exit(code)


@main.command()
@CONFIG_OPTION
@click.option("--event", "event_id", help="Only this Jomablue event id (e.g. acme/event/521).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "html"]), default="table",
              show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report here instead of stdout.")
@click.option("--fix", is_flag=True, help="Repair what drifted (within the API budget) and report what could not be.")
def reconcile(config_path: Path, event_id: str | None, fmt: str, output: Path | None, fix: bool) -> None:
    """Compare what the connector synced with what Salesforce holds.

    Exit 0 when nothing drifted (or everything was fixed), 1 when drift remains.

    Example:

        connector reconcile --config config.yaml --event acme/event/521 --format html --output report.html
    """
    from connector import orchestrate
    from connector.reconcile import render

    cfg = _load(config_path)
    # The contract's reconcile exits 0, 1 or 2: a stop (Salesforce down, the budget, another run
    # holding the lock for --fix) is "cannot reconcile", exit 1.
    with exit_codes(cfg, stop_code=EXIT_FATAL, stop_text="cannot reconcile", fatal_text="cannot reconcile"):
        report = orchestrate.reconcile(cfg, event_id, fix)
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
@click.option("--against-org", is_flag=True,
              help="Also check objects, fields, types and picklists against the org's describe.")
def mapping_validate(config_path: Path, against_org: bool) -> None:
    """Check the mappings; print every problem as file:line: message; exit 2 if any is an error.

    Example:

        connector mapping validate --config config.yaml --against-org
    """
    import asyncio

    from connector.mapping import validate_mapping_folder
    from connector.wiring import build_gateway

    cfg = _load(config_path, offline=not against_org)
    describe = None
    if against_org:
        gateway = build_gateway(cfg)
        cache: dict[str, dict[str, Any] | None] = {}

        def describe(sobject: str) -> dict[str, Any] | None:
            if sobject not in cache:
                cache[sobject] = asyncio.run(gateway.describe(sobject))
            return cache[sobject]

    with exit_codes(cfg, stop_code=EXIT_FATAL, stop_text="cannot reach the org", fatal_text="cannot reach the org"):
        problems = validate_mapping_folder(cfg.mapping.path, describe)
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
               "`connector mapping validate --config FILE` and "
               "`connector mapping preview --config FILE --message FILE`.")


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
    with exit_codes(cfg):
        mappings = load_mappings(cfg)
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
@FORMAT_OPTION
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
    with exit_codes(cfg, stop_code=EXIT_FATAL):    # doctor's contract: 0, 1 or 2
        checks = run_doctor(cfg, build_gateway(cfg), load_mappings(cfg))
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
    with exit_codes(cfg):
        mappings = load_mappings(cfg)
    click.echo(json.dumps({"resource_type": sorted(mappings.resources)}))
    click.echo("FilterPolicyScope: MessageAttributes (the default); Jomablue sets resource_type as a "
               "message attribute", err=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8443, show_default=True, type=int)
@click.option("--cert-dir", type=click.Path(file_okay=False, path_type=Path), help="Where to write the CA certificate.")
@click.option("--latency-ms", default=0, show_default=True, type=click.IntRange(min=0),
              help="Delay added to every API call.")
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

    Emulator = _devkit("emulator", "connector_devkit.emulator", needs=("trustme",)).Emulator

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
@click.option("--messages", default=None, type=int,
              help="How many extra person messages to generate (default: the built-in mix).")
def demo(messages: int | None) -> None:
    """The whole pipeline on embedded SQS (moto) and the bundled Salesforce emulator.

    Publishes a realistic mix of Jomablue traffic through SNS into SQS, syncs it to the end
    and prints what landed in Salesforce.

    Example:

        connector demo
    """
    run_demo = _devkit("demo", "connector_devkit.demo", needs=("trustme", "moto")).run_demo
    sys.exit(run_demo(extra_people=messages))


# The devkit is the `devkit` extra of this distribution (README, "Migration notes"): its code is
# in the wheel, its libraries (moto, trustme) come with the extra and are imported lazily by the
# devkit, so they are looked for here, before anything starts.
DEVKIT_INSTALL = "pip install 'jomablue-salesforce-connector[devkit]'"


def _devkit(command: str, module: str, needs: tuple[str, ...]) -> Any:
    """Import a development-kit module once every library it needs is installed; else one line
    naming the extra to install, exit 2."""
    import importlib
    import importlib.util

    missing = [name for name in ("connector_devkit", *needs) if importlib.util.find_spec(name) is None]
    try:
        found = None if missing else importlib.import_module(module)
    except ImportError as exc:
        missing = [exc.name or module]
    if missing or found is None:
        say("error", "devkit_missing", f"`connector {command}` needs the development kit ({', '.join(missing)} "
            f"not installed): {DEVKIT_INSTALL} (from a clone: pip install '.[devkit]')")
        sys.exit(EXIT_CONFIG)
    return found
