"""The previous release's numbers, printed beside today's (`make bench`'s summary).

Source: the README's "What it costs" section as released on main a811c6f (measured on the
2-core machine against the bundled emulator), and issue 18's own measurements on that commit
where the README has none. Keys are the summary's row keys (summary.py); a row without an entry
here was not measured before and shows "–".
"""

from __future__ import annotations

SOURCE = "main a811c6f: README \"What it costs\" and issue 18's measurements"

# API calls per 1,000 messages, backlog shapes (README table "now" column; emulator at 20 ms, drain).
SHAPES: dict[str, float] = {
    "a": 7.5,           # 200 events whose 1,000 people arrive before the event message
    "b": 2.0,           # 5,000 updates of known people
    "b'": 0.0,          # 5,000 re-publishes, nothing mapped changed
    "c1": 5.0,          # 1,000 session check-ins
    "c2": 1.0,          # then the person messages
    "c3": 1.0,          # then an unchanged re-publish
    "d500": 8.5,        # 10,000 new registrations, batches of 500
    "d1000": 5.5,       # the same, batches of 1,000 (default)
    "mix": 5.2,         # backlog mix: 10,000 over 5 events, 30 % repeats
    "repeats": 0.0,     # duplicates and stale re-sends
    "602": 10.0,        # 602-message queue, two events (issue 18: 10-11.6)
}

# Live, default window (5 s), emulator at 100 ms: (calls per 1,000, lag p99 s). README live table.
LIVE: dict[float, tuple[float, float]] = {5: (120.0, 6.2), 20: (30.0, 6.2), 100: (6.3, 9.0)}

# Replicas at 20 a second through SNS and SQS, PostgreSQL state: calls per 1,000 (issue 18:
# "one consumer costs 26.7 calls per 1,000 and three replicas 80.0"). Two were not measured.
REPLICAS_LIVE: dict[int, float] = {1: 26.7, 3: 80.0}

# Replicas on a backlog (README replicas table, first row: 1,500 people, check-ins later in the
# queue, 100 ms a call, batches of 100, 1,000 req/s, 4 in flight): messages/s and calls per 1,000.
REPLICAS_BACKLOG_RATE: dict[int, float] = {1: 133.0, 2: 221.0, 3: 296.0}
REPLICAS_BACKLOG_CALLS: dict[int, float] = {1: 33.4, 2: 33.4, 3: 33.4}

# SQLite store bytes per synced person (README "State that stays small": about 1,320 bytes per
# synced message on a 10,000-message soak; issue 18: ~1,300).
STORE_BYTES_PER_PERSON = 1320.0
