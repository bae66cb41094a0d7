"""Exit codes as the operator contract says (issue 11, item 6): configuration problems are 2,
state-store problems one clear line and 1, fatal run summaries at level error, JSON logs only
when stderr is not a terminal."""

from __future__ import annotations

import io
import json

import pytest
from jbtest import cli, log_lines, make_config, sample, write_config

from connector import logs

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
