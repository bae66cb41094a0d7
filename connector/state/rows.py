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
    "resources": ("resource_key", "content_hash", "generated_at"),
    "people": ("jomablue_id", "sobject", "sf_id", "rung", "organisation_uid", "record_hash"),
    "events": ("event_id", "campaign_id", "name", "timezone", "metadata", "metadata_at", "is_placeholder",
               "updated_at"),
    "categories": ("event_id", "category_id", "name"),
    "members": ("member_key", "event_id", "campaign_id", "cm_id", "person_key", "person_sf_id", "status",
                "category_ids", "categories_text", "record_hash"),
    "records": ("jomablue_id", "sobject", "sf_id", "updated_at"),
    "campaign_statuses": ("campaign_id", "label"),
    "runs": ("id", "started_at", "finished_at", "exit_code", "summary"),
    "api_usage": ("id", "used", "max", "seen_at"),
    "describe_cache": ("sobject", "describe", "fetched_at"),
    "written": ("sf_id", "sobject", "fields"),
    "dropped_messages": ("message_key", "resource_type", "resource_id", "event_id", "quarantine_reason", "field",
                         "body_sha256", "attempts", "first_seen", "dropped_by", "dropped_reason", "dropped_at"),
    "settings": ("name", "value"),
    "imported_objects": ("object_uri", "scope", "lines", "finished_at"),
}
# Columns no longer kept (issue 18, SQLite 011 / PostgreSQL 008): nothing read them. A person's
# email (the matching reads it from the message; the journal keeps what was written to the
# record), a member's status time, and when the store wrote each row kept per person. Callers
# may still hand them over: :func:`compact` leaves them out.
NOT_KEPT: dict[str, frozenset[str]] = {
    "people": frozenset({"email", "updated_at"}), "members": frozenset({"status_at", "updated_at"}),
    "resources": frozenset({"applied_at"}), "written": frozenset({"written_at"}),
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


def member_in(key: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A full member row for put_members: the caller's row without its key, ids as JSON."""
    row = {k: v for k, v in fields.items() if k != "member_key"}
    row["category_ids"] = json.dumps(row.get("category_ids") or [], ensure_ascii=False)
    return compact("members", {"member_key": key, **row})


def member_out(row: dict[str, Any]) -> dict[str, Any]:
    row = expand("members", row)
    row["category_ids"] = json.loads(row["category_ids"]) if row.get("category_ids") else []
    return row


# -- compact columns (issue 18: the rows kept per synced person) ---------------------------------
# Hashes are stored as bytes; a message's time (generated_at: compared, ordered) as integer
# microseconds since the epoch; a member's person_key not at all when it is the member's own key
# (a person registration's membership). Callers still see hex text, ISO-8601 text and the key.
# Migration 009 (SQLite) / 006 (PostgreSQL) converted existing stores; 011 / 008 shortened their
# hashes to the 128 bits connector.payloads.stable_hash now makes.
HASH_COLUMNS = {"people": ("record_hash",), "members": ("record_hash",), "resources": ("content_hash",)}
TIME_COLUMNS = {"resources": ("generated_at",)}
# The first byte of a stored hash says its form: text, hex as bytes, a JSON object of per-source
# sha256 hashes (each 32 bytes: stores before 011), of per-source 128-bit hashes, or the one
# per-source 128-bit hash of a person only `person` messages name (the usual person: 17 bytes).
_TEXT, _HEX, _HASHES, _HASHES128, _PERSON128 = 0, 1, 2, 3, 4
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_HEXDIGITS = frozenset("0123456789abcdef")


def _is_hash(v: object, length: int) -> bool:
    return isinstance(v, str) and len(v) == length and set(v) <= _HEXDIGITS


def _is_hex(v: str) -> bool:
    return 16 <= len(v) <= 128 and len(v) % 2 == 0 and set(v) <= _HEXDIGITS


def hash_in(value: str | None) -> bytes | None:
    """A hash as stored: lowercase hex as its bytes (16 for a stable_hash), a JSON object of
    per-source hashes (a person's) as (name length, name, the hash's bytes) each, anything else
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
        if parts and all(len(n) < 256 for n in names) and value == json.dumps(parts, sort_keys=True):
            hashes = list(parts.values())
            if names == [b"person"] and _is_hash(hashes[0], 32):
                return bytes([_PERSON128]) + bytes.fromhex(hashes[0])
            for tag, length in ((_HASHES128, 32), (_HASHES, 64)):
                if all(_is_hash(h, length) for h in hashes):
                    return bytes([tag]) + b"".join(bytes([len(n)]) + n + bytes.fromhex(h)
                                                   for n, h in zip(names, hashes, strict=True))
    return bytes([_TEXT]) + value.encode("utf-8", "surrogatepass")


def hash_out(value: bytes | memoryview | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raw = bytes(value)
    tag = raw[0] if raw else _TEXT
    if tag == _HEX:
        return raw[1:].hex()
    if tag == _PERSON128:
        return json.dumps({"person": raw[1:].hex()})
    if tag in (_HASHES, _HASHES128):
        size = 32 if tag == _HASHES else 16
        parts, i = {}, 1
        while i < len(raw):
            n = raw[i]
            parts[raw[i + 1:i + 1 + n].decode("utf-8")] = raw[i + 1 + n:i + 1 + n + size].hex()
            i += 1 + n + size
        return json.dumps(parts, sort_keys=True)
    return raw[1:].decode("utf-8", "surrogatepass")


def short_hash(value: bytes | memoryview | str | None) -> bytes | None:
    """A hash stored before migration 011 (SQLite) / 008 (PostgreSQL), as stored now: a sha256
    (or a person's per-source sha256s) cut to its first 128 bits, which is what
    connector.payloads.stable_hash makes of the same content now, so nothing already applied
    looks changed after the upgrade. Any other value is kept as it was."""
    text = hash_out(value)
    if text is None:
        return None
    if _is_hash(text, 64):
        return hash_in(text[:32])
    if text.startswith("{"):
        try:
            parts = json.loads(text)
        except ValueError:
            parts = None
        if isinstance(parts, dict) and parts and all(_is_hash(h, 64) for h in parts.values()) \
                and text == json.dumps(parts, sort_keys=True):
            return hash_in(json.dumps({k: h[:32] for k, h in parts.items()}, sort_keys=True))
    return hash_in(text)


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


# Per kind of converted column: the columns per table, how a value is stored, how it reads back.
_CONVERTED: tuple[tuple[Mapping[str, tuple[str, ...]], Callable[[Any], Any], Callable[[Any], Any]], ...] = (
    (HASH_COLUMNS, hash_in, hash_out), (TIME_COLUMNS, time_in, time_out))


def compact(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """A row (or part of one) as stored: columns no longer kept left out."""
    dropped = NOT_KEPT.get(table, frozenset())
    row = {k: v for k, v in row.items() if k not in dropped}
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


# -- a SQLite journal row's values (migration 011) ------------------------------------------------
# Most journaled values are text (names, emails, ids, times as Salesforce takes them): stored as
# the texts joined by the ASCII unit separator, None as the record separator, without JSON's
# quotes, commas and brackets (about 20 bytes a person). A row with a value that is neither text
# nor None, text holding the separator, text that is the None mark, or a first value starting
# with "[" stays a JSON array, which always starts with "[" (a packed row never does).
_SEP, _NONE = "\x1f", "\x1e"


def pack(values: list[Any]) -> str:
    """A journal row's values (in its shape's key order) as stored."""
    packable = bool(values) and not (isinstance(values[0], str) and values[0].startswith("[")) \
        and all(v is None or (isinstance(v, str) and _SEP not in v and v != _NONE) for v in values)
    if packable:
        return _SEP.join(_NONE if v is None else v for v in values)
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"), default=str)


def unpack(stored: str, n: int) -> list[Any]:
    """What :func:`pack` stored for a shape of `n` keys."""
    if stored.startswith("["):
        values: list[Any] = json.loads(stored)
        return values
    return [None if v == _NONE else v for v in stored.split(_SEP)] if n else []


def written_out(row: dict[str, Any]) -> dict[str, Any]:
    """A write-journal row as read: its fields as a dict."""
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
