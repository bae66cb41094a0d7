"""`connector import --from s3://...` on moto's S3 (one server per session, in this process): the
archive as Amazon Data Firehose writes an SNS subscription (YYYY/MM/DD/HH/ keys, gzip and plain
objects, envelopes and bare messages, a malformed line), read in key order under the prefix only,
resumed after a stop, and an unreadable bucket refused with exit 2."""

from __future__ import annotations

import boto3
import pytest
from jbtest import cli, log_lines, open_config_state, write_config

from .archive import blob, envelope, event, person


@pytest.fixture
def bucket(moto_endpoint, monkeypatch):
    """A fresh bucket; boto3 in the command reaches moto through AWS_ENDPOINT_URL_S3."""
    import uuid

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    name = "jb-archive-" + uuid.uuid4().hex[:10]
    s3.create_bucket(Bucket=name)
    return s3, name


def _summary(stderr: str) -> dict:
    [line] = [x for x in log_lines(stderr) if x.get("event") == "import_summary"]
    return line


def _put_archive(s3, name: str) -> None:
    """Three Firehose objects under sns/ (the key order is the time order), one under other/."""
    key = "sns/2026/11/23/{hour}/jomablue-archive-1-2026-11-23-{hour}-00-00-{n}{ext}"
    objects = [
        ("01", True, [envelope(event(), "2026-11-23T01:00:00.000Z"),
                      envelope(person(1), "2026-11-23T01:05:00.000Z")]),
        ("02", False, [envelope(person(2), "2026-11-23T02:00:00.000Z"), "{\"Type\": \"Notification\", trunc",
                       person_line(3)]),
        ("03", True, [envelope(person(4), "2026-11-23T03:00:00.000Z"),
                      envelope(person(1, data__job_title="CTO", generated_at="2026-11-23T03:00:00.000Z"),
                               "2026-11-23T03:00:01.000Z")]),
    ]
    for n, (hour, gz, lines) in enumerate(objects):
        s3.put_object(Bucket=name, Key=key.format(hour=hour, n=n, ext=".gz" if gz else ""), Body=blob(lines, gz))
    s3.put_object(Bucket=name, Key="other/2026/11/23/01/x.gz",
                  Body=blob([envelope(person(99), "2026-11-23T01:00:00.000Z")], True))


def person_line(n: int) -> str:
    import json

    return json.dumps(person(n))      # a bare Jomablue message in the archive


def test_an_s3_archive_imports_in_key_order_resumes_after_a_stop_and_costs_nothing_twice(tmp_path, emu, bucket):
    s3, name = bucket
    _put_archive(s3, name)
    cfg = write_config(tmp_path, emu, None)
    source = f"s3://{name}/sns/"

    # A run stopped early (--max-messages, as a kill mid-import would): exit 75, a rerun continues.
    first = cli("import", "--config", str(cfg), "--from", source, "--max-messages", "3")
    assert first.returncode == 75, first.stderr
    s1 = _summary(first.stderr)
    assert s1["objects_finished"] == 1 and s1["counts"] == {"synced": 3}
    finished = open_config_state(cfg).finished_imports([f"mapping={_mapping_version(cfg)}"])
    assert finished == {f"s3://{name}/sns/2026/11/23/01/jomablue-archive-1-2026-11-23-01-00-00-0.gz"}

    second = cli("import", "--config", str(cfg), "--from", source)
    assert second.returncode == 0, second.stderr
    s2 = _summary(second.stderr)
    assert s2["skipped_finished_objects"] == 1 and s2["objects_finished"] == 2
    # Object 2 is read again from its start: the line the first run applied costs nothing.
    assert s2["counts"] == {"skipped_unchanged": 1, "synced": 3, "quarantined": 1}, s2["counts"]

    leads = {r["Jomablue_Id__c"]: r for r in emu.org.records("Lead")}
    assert sorted(leads) == [f"acme/event_person/{n}" for n in (1, 2, 3, 4)]      # not 99: another prefix
    assert leads["acme/event_person/1"]["Title"] == "CTO"                          # the newer message won

    [bad] = open_config_state(cfg).quarantined()
    assert bad["sqs_message_id"] == f"s3://{name}/sns/2026/11/23/02/jomablue-archive-1-2026-11-23-02-00-00-1#L2"
    assert bad["body"].startswith('{"Type": "Notification", trunc')

    emu.reset_counters()
    third = cli("import", "--config", str(cfg), "--from", source)
    assert third.returncode == 0 and _summary(third.stderr)["skipped_finished_objects"] == 3
    assert emu.api_calls == 0


def test_a_time_filter_on_s3_and_an_unreadable_bucket(tmp_path, emu, bucket):
    s3, name = bucket
    _put_archive(s3, name)
    cfg = write_config(tmp_path, emu, None)
    res = cli("import", "--config", str(cfg), "--from", f"s3://{name}/sns/2026/11/23/",
              "--since", "2026-11-23T02:30:00Z")
    assert res.returncode == 0, res.stderr
    s = _summary(res.stderr)
    # Only object 03's two lines are inside (the bare message of 02 is judged by its generated_at,
    # 2025); the bad line of 02 cannot be read, so it is kept
    # (quarantined) rather than dropped unseen.
    assert s["counts"] == {"synced": 2, "quarantined": 1} and s["filtered_out"] == 4, s

    missing = cli("import", "--config", str(cfg), "--from", f"s3://{name}-missing/sns/")
    assert missing.returncode == 2 and "NoSuchBucket" in missing.stderr
    empty = cli("import", "--config", str(cfg), "--from", f"s3://{name}/nothing-here/")
    assert empty.returncode == 2 and "no object" in empty.stderr


def _mapping_version(cfg) -> str:
    from connector.config import load_config
    from connector.wiring import load_mappings

    return load_mappings(load_config(cfg, offline=True)).version
