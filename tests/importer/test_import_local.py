"""`connector import` from a local .jsonl / .jsonl.gz export, in process against the emulator:
each message synced once through the queue's engine, a second import at zero calls, filters,
a dry run that writes and records nothing, a bad line quarantined with its origin and replayed,
and the exit codes for bad options and an unreadable SOURCE."""

from __future__ import annotations

import json

import pytest
from jbtest import cli, log_lines, open_config_state, write_config

from .archive import blob, envelope, event, person

pytestmark = pytest.mark.e2e


def _summary(stderr: str) -> dict:
    [line] = [x for x in log_lines(stderr) if x.get("event") == "import_summary"]
    return line


def _export(tmp_path, lines: list[str], gz: bool = True, name: str = "export.jsonl.gz"):
    path = tmp_path / name
    path.write_bytes(blob(lines, gz))
    return path


def test_a_local_export_syncs_each_message_once_and_a_second_import_costs_nothing(tmp_path, emu):
    cfg = write_config(tmp_path, emu, None)
    lines = [envelope(event(), "2026-11-23T01:00:00.000Z")]
    lines += [envelope(person(n), f"2026-11-23T02:00:{n:02d}.000Z") for n in range(1, 4)]
    lines += [json.dumps(person(9))]                       # a bare Jomablue message
    path = _export(tmp_path, lines)

    res = cli("import", "--config", str(cfg), "--from", str(path))
    assert res.returncode == 0, res.stderr
    s = _summary(res.stderr)
    assert s["counts"] == {"synced": 5} and s["objects_finished"] == 1
    assert sorted(r["Jomablue_Id__c"] for r in emu.org.records("Lead")) == \
        [f"acme/event_person/{n}" for n in (1, 2, 3, 9)]
    assert len(emu.org.records("CampaignMember")) == 4
    progress = [x for x in log_lines(res.stderr) if x.get("event") == "progress"]
    assert progress[-1]["task"] == "import" and progress[-1]["done"] == progress[-1]["total"] == path.stat().st_size
    assert progress[-1]["messages"] == 5 and "rate_per_second" in progress[-1]

    # The same file again: finished, so not even read.
    emu.reset_counters()
    again = cli("import", "--config", str(cfg), "--from", str(path))
    assert again.returncode == 0, again.stderr
    assert _summary(again.stderr)["skipped_finished_objects"] == 1 and emu.api_calls == 0

    # A renamed copy is read through, line by line: everything already applied costs no call,
    # and an older copy of a person never overwrites the newer one.
    older = person(1, data__job_title="Intern", generated_at="2025-01-01T00:00:00.000Z")
    copy = _export(tmp_path, [*lines, json.dumps(older)], gz=False, name="copy.jsonl")
    third = cli("import", "--config", str(cfg), "--from", str(copy))
    assert third.returncode == 0, third.stderr
    counts = _summary(third.stderr)["counts"]
    assert counts == {"skipped_unchanged": 5, "skipped_stale": 1}, counts
    assert emu.calls_by_kind.get("composite", 0) == 0 and emu.api_calls <= 1    # at most a login/limits read
    lead = next(r for r in emu.org.records("Lead") if r["Jomablue_Id__c"] == "acme/event_person/1")
    assert lead.get("Title") != "Intern"


def test_filters_choose_by_time_and_event_and_a_dry_run_writes_and_records_nothing(tmp_path, emu):
    cfg = write_config(tmp_path, emu, None)
    lines = [envelope(event(), "2026-11-20T00:00:00.000Z"),
             envelope(event("acme/event/600"), "2026-11-20T00:00:00.000Z"),
             envelope(person(1), "2026-11-22T23:59:59.000Z"),              # before --since
             envelope(person(2), "2026-11-23T10:00:00.000Z"),              # inside
             envelope(person(3, event="acme/event/600"), "2026-11-24T10:00:00.000Z"),   # another event
             envelope(person(4), "2026-11-30T00:00:00.000Z")]              # at --until: out
    path = _export(tmp_path, lines)
    window = ["--since", "2026-11-23", "--until", "2026-11-30T00:00:00Z"]

    dry = cli("import", "--config", str(cfg), "--from", str(path), *window, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert _summary(dry.stderr)["counts"] == {"would_synced": 2}
    assert emu.org.records("Lead") == [] and emu.org.records("Campaign") == []   # reads only
    state = open_config_state(cfg)
    assert state.finished_imports([""]) == set() and state.outcome_counts() == {}

    res = cli("import", "--config", str(cfg), "--from", str(path), *window, "--event", "acme/event/521")
    assert res.returncode == 0, res.stderr
    s = _summary(res.stderr)
    assert s["counts"] == {"synced": 1} and s["filtered_out"] == 5
    assert [r["Jomablue_Id__c"] for r in emu.org.records("Lead")] == ["acme/event_person/2"]


def test_a_bad_line_is_quarantined_with_its_origin_and_replay_works_on_it(tmp_path, emu):
    cfg = write_config(tmp_path, emu, None)
    no_event = person(5)
    del no_event["context"]["event_id"]
    path = _export(tmp_path, [envelope(event(), "2026-11-23T00:00:00.000Z"), "this is { not json",
                              json.dumps(no_event)], gz=False, name="export.jsonl")
    res = cli("import", "--config", str(cfg), "--from", str(path))
    assert res.returncode == 0, res.stderr         # quarantined is an outcome, not a failure
    assert _summary(res.stderr)["counts"] == {"synced": 1, "quarantined": 2}

    listed = json.loads(cli("quarantine", "list", "--config", str(cfg), "--format", "json").stdout)["quarantined"]
    assert len(listed) == 2
    bad = next(q for q in listed if q["field"] == "body")
    shown = cli("quarantine", "show", bad["message_id"], "--config", str(cfg))
    assert shown.returncode == 0 and f"{path.resolve().as_uri()}#L2" in shown.stdout
    assert "this is { not json" in shown.stdout

    replayed = cli("replay", "--config", str(cfg), "--all")
    assert replayed.returncode == 1                 # still bad: replay ran it again and says so
    assert "quarantined" in replayed.stdout and bad["message_id"] in replayed.stdout


@pytest.mark.parametrize(("args", "says"), [
    (["--from", "/nowhere/export.jsonl"], "no such file"),
    (["--from", "ftp://example.com/x"], "not a source"),
    (["--from", "{export}", "--since", "last tuesday"], "ISO-8601"),
    (["--from", "{export}", "--since", "2026-11-30", "--until", "2026-11-01"], "earlier"),
])
def test_bad_options_and_an_unreadable_source_exit_2(tmp_path, emu, args, says):
    cfg = write_config(tmp_path, emu, None)
    export = _export(tmp_path, [json.dumps(person(1))])
    res = cli("import", "--config", str(cfg), *[a.replace("{export}", str(export)) for a in args])
    assert res.returncode == 2, res.stderr
    assert says in res.stderr and emu.api_calls == 0


def test_an_imported_line_refused_by_the_allow_list_syncs_on_replay_once_the_config_is_fixed(tmp_path, emu):
    from .archive import TOPIC

    other = "arn:aws:sns:us-east-1:123456789012:someone-else"
    cfg = write_config(tmp_path, emu, None, sqs__allowed_topic_arns=[other])
    path = _export(tmp_path, [envelope(event(), "2026-11-23T00:00:00.000Z"),
                              envelope(person(7), "2026-11-23T00:00:01.000Z")])
    res = cli("import", "--config", str(cfg), "--from", str(path))
    assert res.returncode == 0 and _summary(res.stderr)["counts"] == {"quarantined": 2}
    assert emu.org.records("Lead") == []

    fixed = write_config(tmp_path, emu, None, sqs__allowed_topic_arns=[other, TOPIC])
    replayed = cli("replay", "--config", str(fixed), "--all")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert [r["Jomablue_Id__c"] for r in emu.org.records("Lead")] == ["acme/event_person/7"]
    assert replayed.stdout.count(": synced") == 2
