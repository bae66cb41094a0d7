"""The thin CLI and the configuration loader: every command documented, every config problem reported."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from jbtest import cli, sample, write_config

from connector.cli import main
from connector.config import load_config
from connector.errors import ConfigError
from connector.payloads import parse_body

COMMANDS = [["run"], ["status"], ["replay"], ["reconcile"], ["mapping", "validate"], ["emulator"], ["demo"],
            ["quarantine"], ["quarantine", "list"], ["quarantine", "show"], ["quarantine", "drop"],
            ["mapping", "init"], ["mapping", "preview"]]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c))
def test_every_command_has_help_with_an_example(cmd):
    result = CliRunner().invoke(main, [*cmd, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output


def test_config_reports_every_problem_with_its_key_path(tmp_path, monkeypatch):
    monkeypatch.delenv("NOPE", raising=False)
    path = tmp_path / "c.yaml"
    path.write_text(
        "sqs: {queue_url: q, region: r, colour: blue}\n"
        "salesforce: {instance_url: 'https://x', auth: {method: client_credentials, login_url: 'https://x',"
        " client_id: '${NOPE}', client_secret: s}, requests_per_second: -1}\n",
        encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    text = "\n".join(exc.value.problems)
    assert "sqs.colour: unknown key" in text
    assert "salesforce.requests_per_second" in text


def test_config_interpolates_env_resolves_paths_and_hides_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("SF_SECRET", "s3cr3t-value")
    path = tmp_path / "sub" / "c.yaml"
    path.parent.mkdir()
    path.write_text(
        "sqs: {queue_url: q, region: r}\n"
        "salesforce: {instance_url: 'https://x', ca_bundle: ca.pem, auth: {method: client_credentials,"
        " login_url: 'https://x', client_id: id, client_secret: '${SF_SECRET}'}}\n"
        "state: {path: state/c.db}\n", encoding="utf-8")
    (path.parent / "ca.pem").write_text("", encoding="utf-8")
    cfg = load_config(path)
    assert cfg.salesforce.ca_bundle == (path.parent / "ca.pem").resolve()
    assert cfg.state.path == (path.parent / "state/c.db").resolve()
    assert cfg.salesforce.auth.client_secret.get_secret_value() == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(cfg)


def test_missing_env_variable_is_a_config_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.delenv("SF_MISSING", raising=False)
    path = tmp_path / "c.yaml"
    path.write_text("sqs: {queue_url: q, region: r}\nsalesforce: {instance_url: 'https://x', auth: "
                    "{method: access_token, access_token: '${SF_MISSING}'}}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert any("SF_MISSING" in p for p in exc.value.problems)


def test_run_with_a_bad_config_exits_2(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("sqs: {}\n", encoding="utf-8")
    res = cli("run", "--config", str(path), "--drain")
    assert res.returncode == 2
    assert "sqs.queue_url" in res.stderr


@pytest.mark.parametrize("value,expected", [(True, True), ("true", True), ("false", False), (False, False)])
def test_booleans_arrive_as_json_or_strings(value, expected):
    msg = sample("person")
    msg["data"]["checked_in"] = value
    assert parse_body(json.dumps(msg)).payload["data"]["checked_in"] is expected


def test_unknown_keys_are_kept_for_the_mapping():
    msg = sample("person")
    msg["data"]["new_field_2027"] = {"x": "김"}
    assert parse_body(json.dumps(msg)).payload["data"]["new_field_2027"] == {"x": "김"}


def test_status_json_and_reconcile_after_a_run(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq)
    memq.publish(sample("event"))
    memq.publish(sample("person"))
    memq.send_raw("{not json")
    assert cli("run", "--config", str(cfg), "--drain").returncode == 0
    status = json.loads(cli("status", "--config", str(cfg), "--format", "json").stdout)
    assert status["counts"]["synced"] == 2 and status["counts"]["quarantined"] == 1
    assert status["quarantined"][0]["reason"].startswith("body is not JSON")
    rec = cli("reconcile", "--config", str(cfg), "--format", "json")
    assert rec.returncode == 0, rec.stderr
    assert json.loads(rec.stdout)["findings"] == []
    member = emu.org.records("CampaignMember")[0]
    emu.org.update(member["Id"], {"Status": "Registered"})    # edited by hand in Salesforce
    rec = cli("reconcile", "--config", str(cfg), "--format", "json")
    assert rec.returncode == 1
    assert [(d["kind"], d["field"]) for d in json.loads(rec.stdout)["findings"]] == [("member_field", "Status")]
    assert cli("reconcile", "--config", str(cfg), "--fix").returncode == 0
    assert emu.org.get(member["Id"])["Status"] == "Attended"


def test_dry_run_writes_and_deletes_nothing(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq)
    memq.publish(sample("event"))
    memq.publish(sample("person"))
    res = cli("run", "--config", str(cfg), "--drain", "--dry-run", "--max-messages", "2")
    assert res.returncode == 0, res.stderr
    planned = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert {p["sobject"] for p in planned} >= {"Campaign", "Lead", "CampaignMember"}
    assert emu.org.records("Lead") == [] and emu.org.records("Campaign") == []
    assert memq.depth() == 2


@pytest.mark.process
def test_emulator_command_serves_https_with_its_own_ca(tmp_path):
    import os
    import subprocess
    import sys

    import requests

    proc = subprocess.Popen([sys.executable, "-m", "connector", "emulator", "--port", "0", "--cert-dir", str(tmp_path),
                             "--daily-limit", "5000"],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        url = proc.stdout.readline().split(" at ", 1)[1].strip()
        ca = proc.stdout.readline().split(":", 1)[1].strip()
        versions = requests.get(f"{url}/services/data/", verify=ca, timeout=10).json()
        assert any(v["version"] == "62.0" for v in versions)
        token = requests.post(f"{url}/services/oauth2/token", verify=ca, timeout=10, data={
            "grant_type": "client_credentials", "client_id": "emulator-client",
            "client_secret": "emulator-secret"}).json()["access_token"]
        limits = requests.get(f"{url}/services/data/v62.0/limits/", verify=ca, timeout=10,
                              headers={"Authorization": f"Bearer {token}"})
        assert limits.json()["DailyApiRequests"]["Max"] == 5000
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_an_unwritable_state_path_is_a_clear_fatal_error(tmp_path, emu, memq):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x", encoding="utf-8")
    cfg = write_config(tmp_path, emu, memq, state__path=str(blocker / "connector.db"))
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 1
    assert "cannot open the state store" in res.stderr and "Traceback" not in res.stderr


def test_refused_credentials_exit_1_with_the_reason_and_keep_the_messages(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq)
    memq.publish(sample("person"))
    res = cli("run", "--config", str(cfg), "--drain", env={"SF_CLIENT_SECRET": "wrong-secret-123"})
    assert res.returncode == 1
    assert "invalid_client" in res.stderr and "wrong-secret-123" not in res.stderr
    assert memq.depth() == 1


def test_the_example_configuration_loads_and_points_the_state_at_the_volume(monkeypatch):
    from pathlib import Path

    from connector.config import load_config

    monkeypatch.setenv("SF_CLIENT_ID", "id")
    monkeypatch.setenv("SF_CLIENT_SECRET", "secret")
    cfg = load_config(Path(__file__).resolve().parent.parent / "config.example.yaml")
    assert str(cfg.state.path) == "/state/connector.db"
    assert cfg.sqs.batch_window_seconds == 5 and cfg.state.keep_days == 30
