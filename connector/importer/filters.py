"""`--since` / `--until` / `--event`: which archived lines an import hands to the engine.

The time compared is the SNS envelope's `Timestamp` (when SNS accepted the publish), else the
Jomablue message's own `generated_at`; the event is the message's event (`identifiers.id` of an
event message, `context.event_id` of the others), as the engine reads them. A line these cannot
be read from (not JSON, no time) is never filtered out: the engine quarantines it, so a broken
line is seen, not silently dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connector.payloads import parse_utc


class FilterError(ValueError):
    """An option value that is not what it should be (exit 2)."""


def parse_moment(option: str, value: str | None) -> datetime | None:
    """An ISO-8601 time with a zone (`2026-11-30T00:00:00Z`), or a date (`2026-11-30`, midnight UTC)."""
    if value is None:
        return None
    text = value.strip()
    if len(text) == 10:
        text += "T00:00:00Z"
    try:
        return parse_utc(text)
    except ValueError:
        raise FilterError(f"{option} {value!r}: not an ISO-8601 time (e.g. 2026-11-30T00:00:00Z or 2026-11-30)") \
            from None


@dataclass(frozen=True)
class LineFilter:
    since: datetime | None = None
    until: datetime | None = None
    event_id: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.since or self.until or self.event_id)

    @property
    def scope(self) -> str:
        """The filters as the import ledger records them ('' when none)."""
        parts = [f"since={self.since.isoformat()}" if self.since else "",
                 f"until={self.until.isoformat()}" if self.until else "",
                 f"event={self.event_id}" if self.event_id else ""]
        return ";".join(p for p in parts if p)

    def keeps(self, line: str) -> bool:
        """True unless the line is readable and outside the window or of another event."""
        if not self.active:
            return True
        try:
            moment, event = _peek(line)
        except (ValueError, TypeError, KeyError, AttributeError):
            return True
        if moment is not None:
            if self.since and moment < self.since:
                return False
            if self.until and moment >= self.until:
                return False
        if self.event_id and event is not None and event != self.event_id:
            return False
        return True


def _peek(line: str) -> tuple[datetime | None, str | None]:
    outer: Any = json.loads(line)
    inner: Any = outer
    stamp = None
    if isinstance(outer, dict) and isinstance(outer.get("Message"), str) and "Type" in outer:
        stamp = outer.get("Timestamp")
        inner = json.loads(outer["Message"])
    if not isinstance(inner, dict):
        return None, None
    stamp = stamp or inner.get("generated_at")
    moment = parse_utc(stamp) if isinstance(stamp, str) else None
    if inner.get("resource_type") == "event":
        event = (inner.get("identifiers") or {}).get("id")
    else:
        event = (inner.get("context") or {}).get("event_id")
    return moment, event if isinstance(event, str) else None
