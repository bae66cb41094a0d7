"""Row shapes shared by every state-store backend, so SQLite and PostgreSQL hand back the same dicts.

Also the retention policy (what a message's outcome row keeps) and the pruning cut-off: the
store stays small because a synced message leaves behind only its key, outcome and ids, while
the resource's content hash and last `generated_at` (table `resources`) carry dedupe.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

# Outcomes that keep the message body (for replay) and are never pruned.
KEEPS_BODY = frozenset({"quarantined"})
# A quarantined row whose message a replay quarantined again under its real key (settle_replayed).
REPLAYED = "replayed"
# Outcomes whose detail (what was matched, written or why it failed) is worth keeping; a synced
# message's detail is in its log line already, and in Salesforce.
KEEPS_DETAIL = frozenset({"quarantined", "retry"})

# Columns of each table, in the order SQLite's migrations created them: the PostgreSQL backend
# writes only these (an unknown key is a bug in the caller, as it is with sqlite-utils).
COLUMNS: dict[str, tuple[str, ...]] = {
    "messages": ("message_key", "sqs_message_id", "resource_type", "resource_id", "event_id", "outcome",
                 "reason", "field", "body", "detail", "attempts", "first_seen", "last_seen", "reasons"),
    "resources": ("resource_key", "content_hash", "generated_at", "applied_at"),
    "people": ("jomablue_id", "sobject", "sf_id", "rung", "organisation_uid", "email", "record_hash",
               "updated_at"),
    "events": ("event_id", "campaign_id", "name", "timezone", "metadata", "metadata_at", "is_placeholder",
               "updated_at"),
    "categories": ("event_id", "category_id", "name"),
    "members": ("member_key", "event_id", "campaign_id", "cm_id", "person_key", "person_sf_id", "status",
                "status_at", "category_ids", "categories_text", "record_hash", "updated_at"),
    "records": ("jomablue_id", "sobject", "sf_id", "updated_at"),
    "campaign_statuses": ("campaign_id", "label"),
    "runs": ("id", "started_at", "finished_at", "exit_code", "summary"),
    "api_usage": ("id", "used", "max", "seen_at"),
    "describe_cache": ("sobject", "describe", "fetched_at"),
    "written": ("sf_id", "sobject", "fields", "written_at"),
    "dropped_messages": ("message_key", "resource_type", "resource_id", "event_id", "quarantine_reason", "field",
                         "body_sha256", "attempts", "first_seen", "dropped_by", "dropped_reason", "dropped_at"),
    "settings": ("name", "value"),
    "imported_objects": ("object_uri", "scope", "lines", "finished_at"),
}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def cutoff(keep_days: float, at: datetime | None = None) -> str:
    """The `last_seen` before which outcome rows may go (same text form as :func:`now`)."""
    at = at or datetime.now(timezone.utc)
    return (at - timedelta(days=keep_days)).isoformat(timespec="milliseconds")


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def event_in(fields: dict[str, Any]) -> dict[str, Any]:
    """An event's fields as stored: metadata as JSON text."""
    fields = dict(fields)
    if fields.get("metadata") is not None:
        fields["metadata"] = json.dumps(fields["metadata"], sort_keys=True, ensure_ascii=False)
    return fields


def event_out(row: dict[str, Any]) -> dict[str, Any]:
    row["metadata"] = json.loads(row["metadata"]) if row.get("metadata") else None
    return row


def member_in(key: str, fields: dict[str, Any], stamp: str) -> dict[str, Any]:
    """A full member row for put_members: the caller's row without its key/stamp, ids as JSON."""
    row = {k: v for k, v in fields.items() if k not in ("member_key", "updated_at")}
    row["category_ids"] = json.dumps(row.get("category_ids") or [], ensure_ascii=False)
    return compact("members", {"member_key": key, **row, "updated_at": stamp})


def member_out(row: dict[str, Any]) -> dict[str, Any]:
    row = expand("members", row)
    row["category_ids"] = json.loads(row["category_ids"]) if row.get("category_ids") else []
    return row


# -- compact columns (issue 18: the rows kept per synced person) ---------------------------------
# Hashes are stored as bytes; a message's time (generated_at, status_at: compared, ordered) as
# integer microseconds since the epoch; when the store wrote a row (updated_at, applied_at,
# written_at: only shown) as integer seconds; a member's person_key not at all when it is the
# member's own key (a person registration's membership). Callers still see hex text, ISO-8601
# text and the key. Migration 009 (SQLite) / 006 (PostgreSQL) converted existing stores.
HASH_COLUMNS = {"people": ("record_hash",), "members": ("record_hash",), "resources": ("content_hash",)}
TIME_COLUMNS = {"members": ("status_at",), "resources": ("generated_at",)}
STAMP_COLUMNS = {"people": ("updated_at",), "members": ("updated_at",), "resources": ("applied_at",),
                 "written": ("written_at",)}
_HEX, _HASHES, _TEXT = 1, 2, 0     # the first byte of a stored hash says its form
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_HEXDIGITS = frozenset("0123456789abcdef")


def _is_sha256(v: object) -> bool:
    return isinstance(v, str) and len(v) == 64 and set(v) <= _HEXDIGITS


def _is_hex(v: str) -> bool:
    return 16 <= len(v) <= 128 and len(v) % 2 == 0 and set(v) <= _HEXDIGITS


def hash_in(value: str | None) -> bytes | None:
    """A hash as stored: lowercase hex as its bytes (32 for a sha256), a JSON object of sha256
    hashes (a person's per-source hashes) as (name length, name, 32 bytes) each, anything else
    as its UTF-8 text; the first byte says which."""
    if value is None:
        return None
    if _is_hex(value):
        return bytes([_HEX]) + bytes.fromhex(value)
    if value.startswith("{"):
        try:
            parts = json.loads(value)
        except ValueError:
            parts = None
        names = [k.encode("utf-8") for k in parts] if isinstance(parts, dict) else []
        if parts and all(_is_sha256(v) for v in parts.values()) and all(len(n) < 256 for n in names) \
                and value == json.dumps(parts, sort_keys=True):
            return bytes([_HASHES]) + b"".join(bytes([len(n)]) + n + bytes.fromhex(v)
                                               for n, v in zip(names, parts.values(), strict=True))
    return bytes([_TEXT]) + value.encode("utf-8", "surrogatepass")


def hash_out(value: bytes | memoryview | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raw = bytes(value)
    if raw[:1] == bytes([_HEX]):
        return raw[1:].hex()
    if raw[:1] == bytes([_HASHES]):
        parts, i = {}, 1
        while i < len(raw):
            n = raw[i]
            parts[raw[i + 1:i + 1 + n].decode("utf-8")] = raw[i + 1 + n:i + 33 + n].hex()
            i += 33 + n
        return json.dumps(parts, sort_keys=True)
    return raw[1:].decode("utf-8", "surrogatepass")


def time_in(value: str | int | None) -> int | None:
    """An ISO-8601 time as integer microseconds since the epoch (UTC when it names no offset).

    Text that is not a time (no release wrote one; a hand edit might) is not kept: None, as
    PostgreSQL's migration makes it too. Kept as text in an INTEGER column it would sort after
    every number, and a resource's generated_at would refuse every later version.
    """
    if not isinstance(value, str):
        return value
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def time_out(value: int | str | None) -> str | None:
    """ISO-8601 text in UTC (milliseconds shown only when there are some)."""
    if value is None or isinstance(value, str):
        return value
    at = _EPOCH + timedelta(microseconds=int(value))
    spec = "seconds" if not at.microsecond else "milliseconds" if at.microsecond % 1000 == 0 else "microseconds"
    return at.isoformat(timespec=spec)


def stamp_in(value: str | int | None) -> int | None:
    """When the store wrote a row, ISO-8601 text as integer seconds since the epoch."""
    at = time_in(value)
    return None if at is None else at // 1_000_000


def stamp_out(value: int | str | None) -> str | None:
    return time_out(value * 1_000_000) if isinstance(value, int) else value


def stamp() -> int:
    """Now, as a stamp column stores it."""
    return int(datetime.now(timezone.utc).timestamp())


# Per kind of converted column: the columns per table, how a value is stored, how it reads back.
_CONVERTED: tuple[tuple[Mapping[str, tuple[str, ...]], Callable[[Any], Any], Callable[[Any], Any]], ...] = (
    (HASH_COLUMNS, hash_in, hash_out), (TIME_COLUMNS, time_in, time_out), (STAMP_COLUMNS, stamp_in, stamp_out))


def compact(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """A row (or part of one) as stored."""
    row = dict(row)
    for columns, stored, _ in _CONVERTED:
        for c in columns.get(table, ()):
            if c in row:
                row[c] = stored(row[c])
    if table == "members" and "person_key" in row:
        # NULL: the member's own key (the usual case); '' stands for no person.
        key = row["person_key"]
        row["person_key"] = None if key == row.get("member_key") and key else ("" if key is None else key)
    return row


def expand(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as callers see it."""
    for columns, _, read in _CONVERTED:
        for c in columns.get(table, ()):
            if c in row:
                row[c] = read(row[c])
    if table == "members" and "person_key" in row:
        row["person_key"] = row["member_key"] if row["person_key"] is None else (row["person_key"] or None)
    return row


def written_out(row: dict[str, Any]) -> dict[str, Any]:
    """A write-journal row as read: its fields as a dict."""
    row = expand("written", row)
    row["fields"] = json.loads(row["fields"]) if row.get("fields") else {}
    return row


def run_out(row: dict[str, Any]) -> dict[str, Any]:
    row["summary"] = json.loads(row["summary"]) if row.get("summary") else None
    return row


def outcome_row(r: dict[str, Any], before: dict[str, Any] | None, stamp: str) -> dict[str, Any]:
    """The stored form of one message outcome: only what dedupe, replay and reports need.

    Every outcome keeps its key, outcome, resource ids, reason and field (for `status` and the
    reports), attempts and first/last seen. The body and the SQS id stay only while the message
    is quarantined (replay needs them); the detail only for quarantined and retried messages.
    """
    outcome = r["outcome"]
    detail = r.get("detail") if outcome in KEEPS_DETAIL else None
    return {
        "message_key": r["message_key"], "outcome": outcome, "resource_type": r.get("resource_type"),
        "resource_id": r.get("resource_id"), "event_id": r.get("event_id"),
        "sqs_message_id": r.get("sqs_message_id") if outcome in KEEPS_BODY else None,
        "reason": r.get("reason"), "field": r.get("field"),
        "body": r.get("body") if outcome in KEEPS_BODY else None,
        "detail": json.dumps(detail, ensure_ascii=False, default=str) if detail else None,
        "attempts": (before["attempts"] + 1) if before else 1,
        "first_seen": before["first_seen"] if before else stamp,
        "last_seen": stamp,
        "reasons": reason_history(before, r, stamp),
    }


def reason_history(before: dict[str, Any] | None, row: dict[str, Any], stamp: str) -> str | None:
    """Every distinct reason a message was quarantined for, oldest first (JSON), for `quarantine show`."""
    history = json.loads(before["reasons"]) if before and before.get("reasons") else []
    if row["outcome"] != "quarantined":
        return json.dumps(history, ensure_ascii=False) if history else None
    entry = {"at": stamp, "reason": row.get("reason"), "field": row.get("field")}
    if not history or (history[-1]["reason"], history[-1]["field"]) != (entry["reason"], entry["field"]):
        history.append(entry)
    return json.dumps(history, ensure_ascii=False)


def merge_outcomes(rows: list[dict[str, Any]], prev: dict[str, dict[str, Any]], stamp: str) -> list[dict[str, Any]]:
    """Outcome rows to write, one per key: a key seen twice in one call counts two attempts."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        key = r["message_key"]
        out[key] = outcome_row(r, out.get(key) or prev.get(key), stamp)
    return list(out.values())


def unique(values: Iterable[str]) -> list[str]:
    return sorted(set(v for v in values if v))
