"""Replicas at a live rate: 1, 2, 3 services on one SNS → SQS queue (moto) with PostgreSQL state.

A producer publishes new registrations to an SNS topic at `rate` a second for `duration`
seconds; moto delivers them to the SQS queue the replicas consume. Each replica is a full
connector in its own thread and event loop: its own `wire()` (PostgreSQL store with its own pool,
hold and lease connections; gateway with the shared call limit), its own boto3 SQS client, and
`Runner(drain=False)`, i.e. service mode with the connector's defaults (batching window 5 s,
long poll 20 s, batches of 1,000, 5 requests a second and 2 in flight shared by all replicas).
The Salesforce emulator runs in a child process (soak.ChildEmulator), answering every call
after `latency_ms`, so the replicas do not share the GIL with it.

Reported per replica count: API calls per 1,000 published messages (every replica's gateway,
retries included), lag p50/p99 from publish to the batch's return (Salesforce confirmed, state
committed: the outcome's person id → its publish time), batches, collector turns, and batches
received without the lease because the queue was deep. Checked: every person one Lead and one
CampaignMember.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from harness import CallMeter, TimedEngine, per_k, pipeline_config
from soak import ChildEmulator
from traffic import BASE_TIME, CATEGORIES, dumps, event_payload, registration

from connector.config import Config
from connector.queue import SqsQueue
from connector.runner import Runner
from connector.sync.model import Inbound
from connector.wiring import wire

DRAIN_GRACE_SECONDS = 120


@dataclass
class LiveReplicas:
    replicas: int
    rate: float
    turns_on: bool = True
    published: int = 0
    processed: int = 0
    calls: int = 0
    lags: list[float] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)      # per replica
    turns: int = 0
    deep: int = 0
    seconds: float = 0.0
    left_in_queue: int = 0
    synced_twice: int = 0        # people whose message left the queue more than once
    people_missing: int = 0

    def pct(self, q: float) -> float:
        s = sorted(self.lags)
        return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {"replicas": self.replicas, "rate": self.rate, "turns": self.turns_on, "published": self.published,
                "processed": self.processed, "api_calls": self.calls,
                "calls_per_1000": per_k(self.calls, self.published), "lag_p50": round(self.pct(0.5), 2),
                "lag_p99": round(self.pct(0.99), 2), "batches_per_replica": self.batches, "collector_turns": self.turns,
                "deep_queue_batches": self.deep, "seconds": round(self.seconds, 1),
                "left_in_queue": self.left_in_queue, "synced_twice": self.synced_twice,
                "people_missing": self.people_missing}


class Moto:
    """A moto server in this process with an SNS topic subscribed by an SQS queue."""

    def __init__(self) -> None:
        import boto3
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        kw = {"endpoint_url": self.endpoint, "region_name": "us-east-1",
              "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        self.sqs, self.sns = boto3.client("sqs", **kw), boto3.client("sns", **kw)

    def topic_and_queue(self) -> tuple[str, str]:
        name = "bench-" + uuid.uuid4().hex[:8]
        url = self.sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "120"})["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        topic = self.sns.create_topic(Name=name)["TopicArn"]
        self.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        return topic, url

    def depth(self, url: str) -> int:
        a = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])

    def stop(self) -> None:
        self.server.stop()


def _config(emu: Any, d: str, pg_url: str, moto: Moto, queue_url: str) -> Config:
    base = pipeline_config(emu, d, fast_limiter=False).model_dump(mode="python")
    base["sqs"].update(queue_url=queue_url, endpoint_url=moto.endpoint, access_key_id="testing",
                       secret_access_key="testing")
    for k in ("wait_seconds", "batch_window_seconds", "batch_messages"):
        base["sqs"].pop(k, None)                      # the connector's defaults
    base["state"] = {"url": pg_url}
    base["salesforce"]["auth"]["client_secret"] = emu.client_secret
    return Config.model_validate(_secrets_revealed(base))


def _secrets_revealed(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _secrets_revealed(v) for k, v in node.items()}
    reveal = getattr(node, "get_secret_value", None)
    return reveal() if reveal is not None else node


def run_one(replicas: int, rate: float, duration: float, latency_ms: int, base_pg_url: str,
            first_pid: int, turns: bool = True) -> LiveReplicas:
    import psycopg

    res = LiveReplicas(replicas, rate, turns_on=turns)
    schema = f"bench_live_{uuid.uuid4().hex[:10]}"
    pg_url = f"{base_pg_url}{'&' if '?' in base_pg_url else '?'}options={quote(f'-csearch_path={schema}')}"
    emu = ChildEmulator(latency_ms)
    moto = Moto()
    try:
        topic, queue_url = moto.topic_and_queue()
        with tempfile.TemporaryDirectory(prefix="bench-live-replicas-") as d:
            cfg = _config(emu.info, d, pg_url, moto, queue_url)
            wired = [wire(cfg) for _ in range(replicas)]
            ev = event_payload(1, CATEGORIES, BASE_TIME)
            moto.sns.publish(TopicArn=topic, Message=dumps(ev))
            setup = cfg.sqs.model_copy(update={"wait_seconds": 1})
            asyncio.run(Runner(wired[0].engine, SqsQueue(setup), setup, drain=True).run())   # the event, unmeasured
            n = int(rate * duration)
            people = [(f"acme/event_person/{first_pid + k}",
                       dumps(registration(ev, first_pid + k, BASE_TIME + timedelta(days=1, seconds=k / rate))))
                      for k in range(n)]
            published: dict[str, float] = {}
            done: Counter[str] = Counter()
            lock = threading.Lock()

            def on_done(inbounds: list[Inbound], outcomes: list[Any], at: float) -> None:
                with lock:
                    for o in outcomes:
                        if getattr(o, "leaves_queue", True) and o.resource_id in published:
                            res.lags.append(at - published[o.resource_id])
                            done[o.resource_id] += 1

            meters = [CallMeter(w.gateway) for w in wired]
            engines = [TimedEngine(w.engine, on_done) for w in wired]
            runners = [Runner(e, SqsQueue(cfg.sqs), cfg.sqs, drain=False) for e in engines]  # type: ignore[arg-type]
            if not turns:       # the previous release's behaviour, for comparison: every replica receives
                for r in runners:
                    r.gatherer.turns = None
            loops: list[asyncio.AbstractEventLoop | None] = [None] * replicas

            def serve(k: int) -> None:
                async def main() -> None:
                    loops[k] = asyncio.get_running_loop()
                    await runners[k].run()
                asyncio.run(main())

            threads = [threading.Thread(target=serve, args=(k,), daemon=True) for k in range(replicas)]
            for t in threads:
                t.start()
            time.sleep(3)       # every replica past its start-up (preflight) and in the lease queue
            t0 = time.monotonic()
            for k, (pid, body) in enumerate(people):
                pause = t0 + k / rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                published[pid] = time.monotonic()
                moto.sns.publish(TopicArn=topic, Message=body)
            limit = time.monotonic() + DRAIN_GRACE_SECONDS
            while len(res.lags) < n and time.monotonic() < limit:
                time.sleep(0.2)
            res.seconds = time.monotonic() - t0
            for k, r in enumerate(runners):
                loop = loops[k]
                if loop is not None:
                    loop.call_soon_threadsafe(r.stop.set)
                r.queue.interrupt()
            for t in threads:
                t.join(timeout=60)
            res.published, res.processed = n, len(res.lags)
            res.calls = sum(m.read().total for m in meters)
            res.batches = [len(e.batch_sizes) for e in engines]
            for r in runners:
                turns = r.gatherer.turns
                if turns is not None:
                    res.turns += turns.stats["turns"]
                    res.deep += turns.stats["deep"]
            res.left_in_queue = moto.depth(queue_url)
            res.synced_twice = sum(1 for v in done.values() if v > 1)
            res.people_missing = n - len(done)
            for w in wired:
                w.state.close()
    finally:
        moto.stop()
        emu.stop()
        with psycopg.connect(base_pg_url, autocommit=True) as conn:
            conn.execute(f'drop schema if exists "{schema}" cascade')
    return res


def run_live_replicas(counts: list[int], rate: float, duration: float, latency_ms: int,
                      pg_url: str, without_turns: tuple[int, ...] = ()) -> list[LiveReplicas]:
    """Each count with turns; then each of `without_turns` with every replica receiving."""
    out: list[LiveReplicas] = []
    pid = 8_000_000
    for c, turns in [(c, True) for c in counts] + [(c, False) for c in without_turns]:
        r = run_one(c, rate, duration, latency_ms, pg_url, pid, turns)
        pid += int(rate * duration) + 1
        print(f"  replicas {c}{'' if turns else ' (no turns)'} at {rate:g}/s: {r.published} published, {r.calls} calls "
              f"({per_k(r.calls, r.published)}/1k), lag p50 {r.pct(0.5):.2f} s p99 {r.pct(0.99):.2f} s, "
              f"batches {r.batches}, turns {r.turns}, deep {r.deep}", flush=True)
        out.append(r)
    return out


if __name__ == "__main__":   # a quick look: python bench/replicas_live.py [replicas] [seconds]
    import os
    import sys

    from connector import logs

    logs.configure(json_logs=True, level=40)
    counts = [int(x) for x in (sys.argv[1] if len(sys.argv) > 1 else "1,3").split(",")]
    rows = run_live_replicas(counts, 20, float(sys.argv[2]) if len(sys.argv) > 2 else 15, 100,
                             os.environ.get("CONNECTOR_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    print(json.dumps([r.as_dict() for r in rows], indent=1))
