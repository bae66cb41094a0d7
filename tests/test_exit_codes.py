"""Exit codes as the operator contract says (issue 11, item 6; issue 17): configuration problems
are 2, a state store that cannot be opened one clear line naming it and 1, a store failing while a
run holds messages (or a full org) 75 with messages kept, fatal run summaries at level error,
JSON logs only when stderr is not a terminal."""

from __future__ import annotations

import io
import json
import os
import resource
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from jbtest import cli, log_lines, make_config, sample, write_config

from connector import logs
from connector.state import open_state
from connector.state.sql import unavailable
from connector.state.sqlite import RunLock, SqliteStateStore
from connector.state_failures import NO_ROOM

CORRUPT = b"SQLite format 2\x00 this is not a database " * 200


def _config(tmp_path, **overrides) -> str:
    lines = ["sqs: {queue_url: 'http://127.0.0.1:9/q', region: us-east-1}",
             "salesforce: {instance_url: 'https://127.0.0.1:9', ca_bundle: %s, auth: {method: access_token,"
             " access_token: t}}" % overrides.get("ca", "null"),
             "state: {path: state.db}"]
    path = tmp_path / "c.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("cmd", [["run", "--drain"], ["status"], ["replay", "--all"], ["reconcile"]])
def test_a_missing_ca_bundle_is_a_config_error(tmp_path, cmd):
    res = cli(*cmd, "--config", _config(tmp_path, ca="no-such-ca.pem"))
    assert res.returncode == 2, res.stderr
    assert "salesforce.ca_bundle: no such file" in res.stderr and "no-such-ca.pem" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_config_file_that_is_not_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("sqs: {queue_url: q, region: r}\n# réglages\n".encode("latin-1"))
    res = cli("run", "--config", str(path), "--drain")
    assert res.returncode == 2, res.stderr
    assert "not UTF-8" in res.stderr and "Traceback" not in res.stderr


def test_a_config_path_that_is_a_directory_is_a_config_error(tmp_path):
    res = cli("status", "--config", str(tmp_path))
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("damage", ["corrupt", "directory"])
@pytest.mark.parametrize("cmd", [["status"], ["status", "--format", "json"], ["replay", "--all"], ["reconcile"],
                                 ["run", "--drain"]])
def test_a_damaged_state_store_is_one_clear_line_and_exit_1(tmp_path, emu, memq, cmd, damage):
    cfg = write_config(tmp_path, emu, memq)
    state = tmp_path / "state" / "connector.db"
    state.parent.mkdir()
    if damage == "corrupt":
        state.write_bytes(CORRUPT)
    else:
        state.mkdir()
    res = cli(*cmd, "--config", str(cfg))
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    [line] = log_lines(res.stderr)
    assert line["level"] == "error" and "cannot open the state store" in line["reason"]
    assert str(state) in line["reason"]


def test_a_fatal_run_summary_is_logged_at_level_error(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq)
    memq.publish(sample("person"))
    res = cli("run", "--config", str(cfg), "--drain", env={"SF_CLIENT_SECRET": "wrong-secret-123"})
    assert res.returncode == 1
    [summary] = [line for line in log_lines(res.stderr) if line.get("event") == "run_summary"]
    assert summary["level"] == "error" and summary["exit_code"] == 1


def test_a_clean_run_summary_is_info(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq)
    memq.publish(sample("event"))
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0, res.stderr[-2000:]
    [summary] = [line for line in log_lines(res.stderr) if line.get("event") == "run_summary"]
    assert summary["level"] == "info"
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(log_lines(res.stderr)) == len(lines), "stderr is not a terminal: JSON lines only"


def test_config_errors_are_json_lines_when_stderr_is_not_a_terminal(tmp_path):
    res = cli("run", "--config", _config(tmp_path, ca="no-such-ca.pem"), "--drain")
    assert res.returncode == 2
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    parsed = log_lines(res.stderr)
    assert len(parsed) == len(lines) >= 1
    assert all(p["level"] == "error" and p["event"] == "config_error" for p in parsed)


def test_a_crash_is_logged_at_error_with_its_traceback_in_the_same_json_line(monkeypatch):
    err = _Stderr(False)
    monkeypatch.setattr("sys.stderr", err)
    logs.configure()
    try:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logs.get().exception("run_failed", reason="RuntimeError: boom")
    finally:
        monkeypatch.undo()
        logs.configure(json_logs=True)
    [line] = [json.loads(x) for x in err.getvalue().splitlines()]
    assert line["level"] == "error" and "Traceback" in line["exception"] and "boom" in line["exception"]


class _Stderr(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("tty", [True, False])
def test_logs_are_json_lines_only_when_stderr_is_not_a_terminal(monkeypatch, tty):
    err = _Stderr(tty)
    monkeypatch.setattr("sys.stderr", err)
    logs.configure()
    try:
        logs.get().error("run_summary", exit_code=1)
    finally:
        monkeypatch.undo()
        logs.configure(json_logs=True)
    out = err.getvalue().strip()
    assert "run_summary" in out
    if tty:
        with pytest.raises(json.JSONDecodeError):
            json.loads(out)
    else:
        assert json.loads(out)["level"] == "error"


def test_a_budget_that_trips_after_the_last_message_is_a_clean_drain(emu, tmp_path):
    import asyncio

    from connector.queue import MemoryQueue
    from connector.runner import Runner
    from connector.wiring import wire

    cfg = make_config(emu, tmp_path / "s.db")
    w = wire(cfg)
    q = MemoryQueue()
    q.send(json.dumps(sample("event")))
    q.send(json.dumps(sample("person")))
    # The last batch's calls spend the budget: nothing is left in the queue, so the run succeeded.
    spend = lambda counts: w.engine.gateway.guard.observe(100_000, 100_000)  # noqa: E731
    result = asyncio.run(Runner(w.engine, q, cfg.sqs, drain=True, on_batch=spend).run())
    assert len(q) == 0 and len(emu.org.records("CampaignMember")) == 1
    assert result.exit_code == 0, result.reason


# -- issue 17: the failures that escaped the mapping, and the store actually configured -----------
def test_a_ca_bundle_the_process_may_not_read_is_a_config_error_naming_it(tmp_path, monkeypatch):
    # As an operator meets it: a folder on the way the connector's user may not search makes
    # Path.is_file() itself raise PermissionError (the tests run as root, so the OS is faked here).
    ca = tmp_path / "locked" / "ca.pem"
    real_is_file = Path.is_file

    def is_file(self: Path) -> bool:
        if self == ca:
            raise PermissionError(13, "Permission denied", str(self))
        return real_is_file(self)

    monkeypatch.setattr(Path, "is_file", is_file)
    res = cli("status", "--config", _config(tmp_path, ca=str(ca)))
    assert res.returncode == 2, res.stderr
    assert "salesforce.ca_bundle: cannot read" in res.stderr and str(ca) in res.stderr
    assert "Permission denied" in res.stderr and "Traceback" not in res.stderr


def test_a_ca_bundle_that_is_there_but_unreadable_is_a_config_error(tmp_path, monkeypatch):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    real_open = Path.open

    def refuse(self: Path, *args, **kwargs):
        if self == ca:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    res = cli("run", "--drain", "--config", _config(tmp_path, ca=str(ca)))
    assert res.returncode == 2 and f"cannot read {ca}" in res.stderr and "Traceback" not in res.stderr


def test_a_postgresql_store_that_is_down_is_named_with_its_password_masked(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("sqs: {queue_url: 'http://127.0.0.1:9/q', region: us-east-1}\n"
                    "salesforce: {instance_url: 'https://127.0.0.1:9', auth: {method: access_token, access_token: t}}\n"
                    "state: {url: 'postgresql://connector:s3cret-pw@127.0.0.1:9/jb?connect_timeout=2'}\n",
                    encoding="utf-8")
    res = cli("status", "--config", str(path))
    assert res.returncode == 1, res.stderr
    [line] = log_lines(res.stderr)
    assert "cannot open the state store at postgresql://connector:***@127.0.0.1:9/jb" in line["reason"]
    assert "s3cret-pw" not in res.stderr and "connector.db" not in res.stderr and "Traceback" not in res.stderr


def _summary(stderr: str) -> dict:
    [summary] = [line for line in log_lines(stderr) if line.get("event") == "run_summary"]
    return summary


def test_a_state_write_failing_in_preflight_stops_75_before_taking_a_message(tmp_path, emu, memq, monkeypatch):
    cfg = write_config(tmp_path, emu, memq)
    memq.publish(sample("event"))

    def disk_io_error(self, describes):
        # What the store raises when SQLite answers "disk I/O error" (its one translation).
        raise unavailable(str(self.db_path), "write", sqlite3.OperationalError("disk I/O error"), io_error=True)

    monkeypatch.setattr(SqliteStateStore, "put_describes", disk_io_error)
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 75, res.stderr[-2000:]
    summary = _summary(res.stderr)
    assert summary["phase"] == "preflight" and summary["level"] == "warning"
    assert f"a write failed ({NO_ROOM}): disk I/O error" in summary["reason"]
    assert "nothing was lost: no message was taken" in summary["reason"]
    assert str(tmp_path / "state" / "connector.db") in summary["reason"]
    assert "Traceback" not in res.stderr and memq.depth() == 1


@pytest.mark.process
def test_a_file_size_limit_is_exit_75_not_a_traceback(tmp_path, emu, aws):
    # The operator's reproduction (`ulimit -f` on the state's disk), made independent of the
    # schema's size: the store is created first, then no file may grow past 48 KiB. Every write
    # goes to the WAL first, which holds the run's own row but not the org's describes or a batch:
    # preflight's describes or the first batch's commit hit the limit (which one depends on the
    # describes' size); either way the run stops and keeps it all.
    cfg = write_config(tmp_path, emu, aws)
    aws.publish(sample("event"))
    db = tmp_path / "state" / "connector.db"
    open_state(db).close()
    ceiling = 48 * 1024

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (ceiling, resource.RLIM_INFINITY))

    res = subprocess.run([sys.executable, "-m", "connector", "run", "--config", str(cfg), "--drain"],
                         capture_output=True, text=True, timeout=120, preexec_fn=limit,
                         env={**os.environ, "SF_CLIENT_SECRET": "emulator-secret"})
    assert res.returncode == 75, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    summary = _summary(res.stderr)
    assert f"a write failed ({NO_ROOM})" in summary["reason"], res.stderr[-3000:]
    assert "nothing was lost" in summary["reason"]
    assert aws.depth() == 1


def test_a_disk_that_fills_mid_run_says_a_write_failed_and_nothing_was_lost(tmp_path, emu, memq, monkeypatch):
    cfg = write_config(tmp_path, emu, memq, sqs__batch_messages=1)
    memq.publish_many([sample("event")] + [sample("person", id=f"p-{i}") for i in range(3)])
    real_apply = SqliteStateStore.apply
    applied = []

    def fills_up(self, changes):
        if len(applied) == 2:
            raise unavailable(str(self.db_path), "write", sqlite3.OperationalError("database or disk is full"),
                              disk_full=True)
        real_apply(self, changes)
        applied.append(changes)

    monkeypatch.setattr(SqliteStateStore, "apply", fills_up)
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 75, res.stderr[-2000:]
    summary = _summary(res.stderr)
    assert f"a write failed ({NO_ROOM}): database or disk is full" in summary["reason"]
    assert "nothing was lost" in summary["reason"] and "cannot open" not in summary["reason"]
    assert sum(summary["counts"].values()) == 2      # what was committed before is counted
    assert memq.depth() == 2 and "Traceback" not in res.stderr


def test_a_full_org_stops_the_run_75_with_a_reason_an_admin_reads(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq)
    memq.publish_many([sample("event"), sample("person")])
    emu.org.storage_full = True          # every create refused STORAGE_LIMIT_EXCEEDED, as a full org answers
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 75, res.stderr[-2000:]
    summary = _summary(res.stderr)
    assert "the Salesforce org's data storage is full (Salesforce answered STORAGE_LIMIT_EXCEEDED)" in summary["reason"]
    assert summary["reason"].count("storage is full") == 1, summary["reason"]          # said once
    assert "an admin must free space" in summary["reason"] and "stays in the queue" in summary["reason"]
    assert memq.depth() == 2 and emu.org.records("Lead") == [] and "Traceback" not in res.stderr


def test_replay_and_reconcile_fix_wait_for_the_run_lock(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq)
    db = tmp_path / "state" / "connector.db"
    lock = RunLock(db)
    lock.acquire(0)
    try:
        res = cli("replay", "--all", "--config", str(cfg))
        assert res.returncode == 75 and f"another run holds {db}" in res.stderr, res.stderr
        res = cli("reconcile", "--fix", "--config", str(cfg))
        assert res.returncode == 1 and "cannot reconcile: another run holds" in res.stderr, res.stderr
        # Reading is never blocked: a report without --fix, and status.
        assert cli("reconcile", "--config", str(cfg)).returncode == 0
        assert cli("status", "--config", str(cfg)).returncode == 0
    finally:
        lock.release()
    assert cli("replay", "--all", "--config", str(cfg)).returncode == 0
    assert cli("reconcile", "--fix", "--config", str(cfg)).returncode == 0


def test_status_counts_skipped_messages_per_reason(tmp_path, emu, memq):
    # Lead captures left unmapped on purpose: a mapping folder without lead.yaml.
    from connector.mapping import default_mapping_folder

    folder = tmp_path / "mappings"
    folder.mkdir()
    for name in ("event.yaml", "person.yaml", "session_participation.yaml"):
        (folder / name).write_bytes((default_mapping_folder() / name).read_bytes())
    cfg = write_config(tmp_path, emu, memq, mapping__path=str(folder))
    memq.publish_many([sample("event"), sample("person"), sample("lead")])
    assert cli("run", "--config", str(cfg), "--drain").returncode == 0
    memq.publish_many([sample("event"), sample("person")])      # the same content again: unchanged
    assert cli("run", "--config", str(cfg), "--drain").returncode == 0
    doc = json.loads(cli("status", "--config", str(cfg), "--format", "json").stdout)
    assert doc["skipped"] == {"unchanged": 2, "unmapped": 1}, doc["counts"]
    table = cli("status", "--config", str(cfg)).stdout
    assert "Skipped: 3" in table and "the same content as last applied" in table
    assert "no mapping file for its resource type" in table


@pytest.mark.parametrize(("command", "library"), [("demo", "moto"), ("emulator", "trustme")])
def test_a_devkit_command_without_the_extra_names_it_in_one_line(monkeypatch, command, library):
    monkeypatch.setitem(sys.modules, library, None)     # not installed: find_spec answers None
    res = cli(command)
    assert res.returncode == 2, res.stderr
    [line] = log_lines(res.stderr)
    assert f"`connector {command}` needs the development kit ({library} not installed)" in line["reason"]
    assert "pip install 'jomablue-salesforce-connector[devkit]'" in line["reason"]


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://jb:pw@db:5432/x?sslmode=require", "postgresql://jb:***@db:5432/x?sslmode=require"),
    ("postgresql://jb@db/x", "postgresql://jb@db/x"),
    ("postgresql://:p%40ss@db/x", "postgresql://:***@db/x"),
])
def test_the_store_is_named_as_configured_without_its_password(url, shown):
    from connector.config import StateConfig
    from connector.state_failures import store_location

    assert store_location(StateConfig(url=url)) == shown
    assert store_location(StateConfig(path=Path("/state/c.db"))) == "/state/c.db"


