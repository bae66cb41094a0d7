"""What the operator sees: `connector status` and `connector quarantine` (state store reads,
queue depths from SQS, personal data redacted when configured; none of it needs Salesforce
credentials), and the one-line notices on stderr every command gives.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from connector import logs
from connector.config import Config, SqsConfig
from connector.redact import Redactor
from connector.state.base import StateStore
from connector.sync.model import SkipReason

# What each skip means, for the status table (connector.sync.model.SkipReason).
SKIP_MEANING = {
    SkipReason.DUPLICATE: "the same content twice in one batch",
    SkipReason.STALE: "older than what was applied",
    SkipReason.UNCHANGED: "the same content as last applied",
    SkipReason.UNKNOWN_TYPE: "a resource_type the connector does not know",
    SkipReason.INSTANCE: "an instance the configuration skips",
    SkipReason.UNMAPPED: "no mapping file for its resource type",
}


def say(level: str, event: str, text: str, **fields: Any) -> None:
    """A line for the operator on stderr: plain text on a terminal, else a JSON log line at `level`
    (stderr carries JSON lines only, when it is not a terminal: the operator contract, Logs)."""
    if sys.stderr.isatty():
        click.echo(text, err=True)
    else:
        getattr(logs.get(), level)(event, reason=text, **fields)


def summary_level(exit_code: int) -> str:
    """run_summary's level: error for a fatal run, warning when messages were left queued."""
    return {0: "info", 75: "warning"}.get(exit_code, "error")


def _sqs_client(cfg: SqsConfig) -> Any:
    import boto3
    from botocore.config import Config as BotoConfig

    kwargs: dict[str, Any] = {"region_name": cfg.region,
                              "config": BotoConfig(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2})}
    if cfg.endpoint_url:
        kwargs["endpoint_url"] = cfg.endpoint_url
    if cfg.access_key_id and cfg.secret_access_key:
        kwargs["aws_access_key_id"] = cfg.access_key_id.get_secret_value()
        kwargs["aws_secret_access_key"] = cfg.secret_access_key.get_secret_value()
    return boto3.client("sqs", **kwargs)


_DEPTH = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]


def _depth(client: Any, url: str) -> dict[str, Any]:
    a = client.get_queue_attributes(QueueUrl=url, AttributeNames=[*_DEPTH, "RedrivePolicy"])["Attributes"]
    out: dict[str, Any] = {"url": url, "visible": int(a.get(_DEPTH[0], 0)), "in_flight": int(a.get(_DEPTH[1], 0)),
                           "delayed": int(a.get(_DEPTH[2], 0))}
    if a.get("RedrivePolicy"):
        policy = json.loads(a["RedrivePolicy"])
        out["max_receive_count"] = int(policy.get("maxReceiveCount", 0)) or None
        out["dead_letter_arn"] = policy.get("deadLetterTargetArn")
    return out


def queue_depths(cfg: SqsConfig) -> dict[str, Any]:
    """The queue's depth and, when its RedrivePolicy names one, the dead-letter queue's.
    Never raises: an unreachable queue is reported as an error entry."""
    try:
        client = _sqs_client(cfg)
        queue = _depth(client, cfg.queue_url)
        dlq = None
        arn = queue.get("dead_letter_arn")
        if arn:
            # arn:aws:sqs:REGION:ACCOUNT:NAME
            parts = arn.split(":")
            dlq_url = client.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"]
            dlq = _depth(client, dlq_url)
        return {"queue": queue, "dead_letter_queue": dlq}
    except Exception as exc:  # status must work when SQS is not reachable: say so instead
        return {"queue": None, "dead_letter_queue": None, "error": f"{type(exc).__name__}: {exc}"}


def pretty_body(body: str) -> str:
    """A stored body as an admin reads it: JSON indented; an SNS envelope's Message decoded below
    a line naming the topic. Anything else exactly as stored."""
    try:
        doc = json.loads(body)
    except ValueError:
        return body
    if isinstance(doc, dict) and doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):
        head = f"(SNS notification {doc.get('MessageId', '')} from {doc.get('TopicArn', '?')})"
        return head + "\n" + pretty_body(doc["Message"])
    return json.dumps(doc, ensure_ascii=False, indent=2)


def quarantine_row(r: dict[str, Any], redact: Redactor) -> dict[str, Any]:
    return {"message_id": r["message_key"], "resource_type": r["resource_type"], "resource_id": r["resource_id"],
            "event_id": r["event_id"], "reason": redact.text(r["reason"]), "field": r["field"],
            "attempts": r["attempts"], "first_seen": r["first_seen"], "last_seen": r["last_seen"]}


def what(q: dict[str, Any]) -> str:
    """How a quarantined message is named in a list: its resource, or its body key when the body
    could not be read (`sha256:...` is the message id then)."""
    if q.get("resource_type"):
        return f"{q['resource_type']} {q.get('resource_id') or ''}".strip()
    return "unreadable body"


def skipped_by_reason(counts: dict[str, int]) -> dict[str, int]:
    """Skipped messages per reason (`skipped_unmapped` → `unmapped`), from the outcome counts."""
    return {k.removeprefix("skipped_"): n for k, n in sorted(counts.items()) if k.startswith("skipped_")}


def quarantine_list_lines(rows: list[dict[str, Any]], config_path: object) -> list[str]:
    """`quarantine list` as a table: two lines a message (what, attempts, last seen; the reason)."""
    if not rows:
        return ["No quarantined messages."]
    lines = []
    for q in rows:
        lines.append(f"{q['message_id']}  {what(q)}  event {q['event_id'] or '-'}  attempts {q['attempts']}  "
                     f"last seen {q['last_seen']}")
        lines.append(f"    {q['reason']}" + (f" [field {q['field']}]" if q["field"] else ""))
    lines.append(f"{len(rows)} quarantined. Look at one: connector quarantine show ID --config {config_path}")
    return lines


def quarantine_show_lines(r: dict[str, Any], redactor: Redactor, reveal: bool, config_path: object) -> list[str]:
    """`quarantine show`: one stored message, every reason it was quarantined for, its body (redacted
    unless `reveal`), and the commands that replay or discard it."""
    lines = [f"Message     {r['message_key']}",
             f"About       {what(r)}" + (f" in event {r['event_id']}" if r["event_id"] else ""),
             f"SQS id      {r['sqs_message_id'] or '-'}",
             f"Attempts    {r['attempts']} (first {r['first_seen']}, last {r['last_seen']})",
             "Reasons"]
    history = json.loads(r["reasons"]) if r.get("reasons") else []
    if not history:
        history = [{"at": r["last_seen"], "reason": r["reason"], "field": r["field"]}]
    for h in history:
        field = f"  [field {h['field']}]" if h.get("field") else ""
        lines.append(f"  {h['at']}  {redactor.text(h['reason'])}{field}")
    if r.get("detail"):
        lines.append(f"Detail      {redactor.text(r['detail'])}")
    body = r["body"] or ""
    lines.append("Body" + (" (personal data redacted; --reveal shows it as stored)"
                           if redactor.enabled and not reveal else ""))
    lines.append(pretty_body(body if reveal else (redactor.body(body) or "")))
    lines.append(f"\nReplay it: connector replay --config {config_path} --message-id {r['message_key']}")
    lines.append(f"Discard it: connector quarantine drop {r['message_key']} --reason TEXT --config {config_path}")
    return lines


def status_doc(cfg: Config, state: StateStore, redact: Redactor, runs: int = 5) -> dict[str, Any]:
    counts = state.outcome_counts()
    return {
        "counts": counts,
        "skipped": skipped_by_reason(counts),
        "quarantined": [quarantine_row(r, redact) for r in state.quarantined()],
        "dropped": len(state.dropped()),
        "sqs": queue_depths(cfg.sqs),
        "runs": state.recent_runs(runs),
        "last_run": state.last_run(),
        "api_usage": state.api_usage(),
        # What the store holds, per kind of row (issue 18: a store that stays small).
        "store": {"bytes": state.size_bytes(), "by_kind": state.size_by_kind()},
    }


def status_table(doc: dict[str, Any]) -> list[str]:
    lines = ["Outcomes"]
    lines += [f"  {k:<28} {v:>8}" for k, v in doc["counts"].items()] or ["  (no messages yet)"]
    skipped = doc.get("skipped") or {}
    if skipped:
        lines.append(f"Skipped: {sum(skipped.values()):,}")
        lines += [f"  {reason:<28} {n:>8}  {SKIP_MEANING.get(reason, '')}".rstrip() for reason, n in skipped.items()]
    sqs = doc["sqs"]
    if sqs.get("error"):
        lines.append(f"Queue: not reachable ({sqs['error']})")
    else:
        q = sqs["queue"]
        lines.append(f"Queue: {q['visible']:,} waiting, {q['in_flight']:,} in flight, {q['delayed']:,} delayed "
                     f"({q['url']})")
        d = sqs["dead_letter_queue"]
        if d:
            lines.append(f"Dead-letter queue: {d['visible']:,} waiting, {d['in_flight']:,} in flight "
                         f"(after {q.get('max_receive_count')} receives; {d['url']})")
        else:
            lines.append("Dead-letter queue: none configured (no RedrivePolicy on the queue)")
    lines.append(f"Quarantined: {len(doc['quarantined'])}" + (f" (dropped for good: {doc['dropped']})"
                                                              if doc["dropped"] else ""))
    for q in doc["quarantined"][:50]:
        field = f" [{q['field']}]" if q.get("field") else ""
        lines.append(f"  {q['message_id']}  {what(q)}{field}: {q['reason']}")
    if len(doc["quarantined"]) > 50:
        lines.append(f"  … and {len(doc['quarantined']) - 50} more: connector quarantine list")
    if doc["runs"]:
        lines.append("Last runs")
        for r in doc["runs"]:
            s = r.get("summary") or {}
            counts = ", ".join(f"{k} {v}" for k, v in sorted((s.get("counts") or {}).items()))
            lines.append(f"  #{r['id']} {r['started_at']} → {r['finished_at'] or 'running or stopped'}  exit "
                         f"{r['exit_code'] if r['exit_code'] is not None else '-'}"
                         + (f"  {counts}" if counts else "") + (f"  ({s['reason']})" if s.get("reason") else ""))
    usage = doc["api_usage"]
    if usage:
        lines.append(f"API usage seen: {usage['used']:,}/{usage['max']:,} at {usage['seen_at']}")
    store = doc.get("store")
    if store:
        by_size = sorted(store["by_kind"].items(), key=lambda kv: -kv[1])
        kinds = ", ".join(f"{k} {v / 1024:,.0f} KiB" for k, v in by_size)
        lines.append(f"State store: {store['bytes'] / 1024:,.0f} KiB" + (f" ({kinds})" if kinds else ""))
    return lines
