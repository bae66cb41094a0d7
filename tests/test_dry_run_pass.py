"""A dry run is one pass and harmless to the queue: each message received at most once, the run
ends by itself (with and without --drain), everything is released at once, and no message is
pushed into the dead-letter queue by it. SQS via moto over HTTP (the command in process), with a
redrive policy and a DLQ: the receive counts and the redrive are SQS's own."""

from __future__ import annotations

import asyncio
import json

from jbtest import attach_dlq, cli, log_lines, make_config, sample, write_config

from connector.queue import MemoryQueue
from connector.runner import Runner
from connector.wiring import wire

MAX_RECEIVES = 3


def _with_dlq(aws) -> str:
    return attach_dlq(aws.sqs, aws.queue_url, MAX_RECEIVES)


def _dlq_depth(aws, dlq: str) -> int:
    a = aws.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages",
                                                                   "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in a["Attributes"].values())


def _visible(aws) -> int:
    a = aws.sqs.get_queue_attributes(QueueUrl=aws.queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(a["Attributes"]["ApproximateNumberOfMessages"])


def _summary(stderr: str) -> dict:
    [line] = [x for x in log_lines(stderr) if x.get("event") == "run_summary"]
    return line


def test_a_dry_run_is_one_pass_that_leaves_every_message_queued(tmp_path, emu, aws, monkeypatch):
    # The pass ends on an empty receive, a 1 s long poll in production (a short poll samples only
    # some SQS servers). moto is one server that answers a short poll with every visible message,
    # and waits out a long one for real: here the wait is only time.
    monkeypatch.setattr("connector.gather.DRY_RUN_WAIT_SECONDS", 0)
    dlq = _with_dlq(aws)
    n = 48
    aws.publish_many([sample("person", identifiers__id=f"acme/event_person/{1000 + i}",
                             identifiers__email=f"p{i}@example.com", identifiers__organisation_uid=None)
                      for i in range(n)])
    # One receive at a time: moto's ReceiveMessage is not atomic (moto/sqs/models.py receive_message
    # reads `message.visible` and the receive count without a lock), so two parallel receives can
    # both take a message, and one of them moves a message with one delivery left to the DLQ.
    # SQS hands a message to one receive; what this test counts is the dry run's receives.
    cfg = write_config(tmp_path, emu, aws, sqs__parallel_receives=1)

    # Service mode (no --drain): it still ends by itself once every message has been seen.
    res = cli("run", "--config", str(cfg), "--dry-run")
    assert res.returncode == 0, res.stderr
    counts = _summary(res.stderr)["counts"]
    assert sum(v for k, v in counts.items() if not k.startswith("dry_run_")) == n     # each planned once
    assert _visible(aws) == n and _dlq_depth(aws, dlq) == 0                           # released at once
    assert emu.org.records("Lead") == []

    # A second pass: every message now shows N-1 receives, one real delivery left: none is planned.
    res = cli("run", "--config", str(cfg), "--dry-run", "--drain")
    assert res.returncode == 0, res.stderr
    assert _summary(res.stderr)["counts"] == {"dry_run_near_dlq": n}
    assert _visible(aws) == n and _dlq_depth(aws, dlq) == 0

    # The real run still gets every message: none was pushed into the DLQ by the dry runs.
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0, res.stderr
    assert _summary(res.stderr)["counts"].get("synced") == n
    assert aws.depth() == 0 and _dlq_depth(aws, dlq) == 0
    assert len(emu.org.records("Lead")) == n


def _memory_run(emu, tmp_path, q: MemoryQueue, **kw):
    cfg = make_config(emu, tmp_path / "s.db")
    w = wire(cfg, dry_run=True)
    return asyncio.run(Runner(w.engine, q, cfg.sqs, **kw).run())


def test_a_dry_run_that_took_a_last_delivery_stops_there(tmp_path, emu):
    q = MemoryQueue(max_receives=MAX_RECEIVES)
    for i in range(25):
        q.send(json.dumps(sample("person", identifiers__id=f"acme/event_person/{i}")))
    for _ in range(MAX_RECEIVES - 1):            # earlier deliveries that failed: one left each
        got = q.receive(25, 0, 30)
        q.change_visibility([m.handle for m in got], 0)
    result = _memory_run(emu, tmp_path, q, drain=False)
    assert result.exit_code == 0
    # The first ten had theirs taken (SQS only tells the count after the receive); the pass
    # stopped there, so the others keep their last delivery.
    assert result.counts["dry_run_last_delivery"] == 10 and sum(result.counts.values()) == 10
    assert len(q) == 25 and q.dead_letters == []
    assert q.receive(25, 0, 30) and len(q.dead_letters) == 10 and len(q) == 15


def test_a_dry_run_stops_at_max_messages_and_releases_what_it_held(tmp_path, emu):
    q = MemoryQueue(max_receives=MAX_RECEIVES)
    for i in range(30):
        q.send(json.dumps(sample("person", identifiers__id=f"acme/event_person/{i}")))
    result = _memory_run(emu, tmp_path, q, drain=True, max_messages=12)
    assert result.exit_code == 0 and sum(result.counts.values()) == 12
    assert len(q.receive(10, 0, 30)) == 10 and len(q.receive(30, 0, 30)) == 20     # all visible at once


def test_a_dry_run_over_500_messages_ends_by_itself_and_changes_nothing(tmp_path, emu, memq):
    """Issue #10's done-when: 500 messages, one pass, nothing changed in Salesforce, the state store
    or the dead-letter queue, every message still queued (in process, the queue's redrive policy)."""
    memq.queue.max_receives = MAX_RECEIVES
    memq.publish(sample("event"))
    memq.publish_many([sample("person", identifiers__id=f"acme/event_person/{5000 + i}",
                              identifiers__email=f"d{i}@example.com", identifiers__organisation_uid=None,
                              data__checked_in=bool(i % 2)) for i in range(499)])
    cfg = write_config(tmp_path, emu, memq)
    res = cli("run", "--config", str(cfg), "--dry-run", "--drain")
    assert res.returncode == 0, res.stderr
    counts = _summary(res.stderr)["counts"]
    assert counts == {"would_synced": 500}, counts
    assert "create Lead for acme/event_person/5000: no match on organisation_uid or email" in res.stdout
    assert memq.depth() == 500 and memq.queue.dead_letters == []
    assert emu.org.records("Lead") == [] and emu.org.records("Campaign") == []
    assert set(emu.calls_by_kind) <= {"query", "composite"}, emu.calls_by_kind     # reads only
    status = json.loads(cli("status", "--config", str(cfg), "--format", "json").stdout)
    assert status["counts"] == {} and status["quarantined"] == []
