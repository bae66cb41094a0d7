"""The one SOQL query builder: `IN` lists packed into as few statements as Salesforce accepts.

Three limits bound a statement:
- a REST query travels in the URL, and the request line plus headers may be at most 16,384
  bytes (past that: 414 with an HTML body, no JSON; Salesforce Help 000386264); each statement
  here stays under :data:`MAX_ENCODED_QUERY` bytes percent-encoded, leaving room for the path
  and headers;
- a SOQL statement may be at most 100,000 characters (:data:`MAX_SOQL`; App Limits cheatsheet,
  "SOQL and SOSL Limits for Search Queries": "By default, 100,000 characters");
- a string in a WHERE clause may be at most 4,000 characters (:data:`MAX_WHERE_STRING`; same
  cheatsheet: "Strings in SOQL WHERE clauses: 4,000 characters for each string"; SOQL and SOSL
  Reference, "WHERE": "Strings in WHERE clauses can't exceed 4,000 characters").
Values are escaped by simple-salesforce's ``format_soql``; a single value that cannot fit any
statement raises :class:`ValueTooLong`, so the caller fails that value's message, not the batch.
"""

from __future__ import annotations

from collections.abc import Iterable

from simple_salesforce.format import format_soql

MAX_ENCODED_QUERY = 15_000
MAX_SOQL = 100_000
MAX_WHERE_STRING = 4_000


class ValueTooLong(ValueError):
    def __init__(self, field: str, value: str) -> None:
        limit = (f"a SOQL WHERE string holds at most {MAX_WHERE_STRING:,} characters"
                 if not _short_enough(value) else "too long for any SOQL query")
        super().__init__(f"a {field} of {len(value):,} characters: {limit}")
        self.field = field
        self.value = value


# Bytes that travel as themselves in a query string (quote_plus's safe set; a space becomes "+").
_AS_IS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-~ "


def encoded_len(text: str) -> int:
    """len(quote_plus(text)) without building it: every other UTF-8 byte becomes %XX."""
    raw = text.encode("utf-8", "surrogatepass")
    return len(raw) + 2 * len(raw.translate(None, _AS_IS))


def literal(value: str) -> str:
    return format_soql("{}", value)


def _short_enough(value: str) -> bool:
    """Within the WHERE-clause string limit, counted as escaped (the stricter reading)."""
    return len(literal(value)) - 2 <= MAX_WHERE_STRING


def fits(value: str, room: int = 2_000) -> bool:
    """Whether one value can travel in a statement with `room` bytes left for the rest."""
    text = literal(value)
    return _short_enough(value) and encoded_len(text) + room <= MAX_ENCODED_QUERY and len(text) + room <= MAX_SOQL


def pack_or(head: str, clauses: Iterable[tuple[str, Iterable[str]]], tail: str = "") -> list[str]:
    """`head + (f1 IN (...) OR f2 IN (...)) + tail`, split so every statement fits both limits.

    `head` ends where the condition starts ("SELECT Id FROM Lead WHERE "); `tail` closes what
    head opened, if anything. Values are de-duplicated and sorted (stable statements).
    """
    fixed_enc, fixed_raw = encoded_len(head + tail), len(head + tail)
    statements: list[str] = []
    current: dict[str, list[str]] = {}
    enc, raw = fixed_enc, fixed_raw      # the lengths of the statement being built

    def flush() -> None:
        if current:
            body = " OR ".join(f"{name} IN ({', '.join(literal(v) for v in vals)})" for name, vals in current.items())
            statements.append(head + body + tail)

    for name, values in clauses:
        if not name:
            continue
        for v in sorted({str(x) for x in values if x}):
            text = literal(v)
            opening = f"{name} IN ()"
            alone_enc, alone_raw = fixed_enc + encoded_len(opening) + encoded_len(text), \
                fixed_raw + len(opening) + len(text)
            if alone_enc > MAX_ENCODED_QUERY or alone_raw > MAX_SOQL or len(text) - 2 > MAX_WHERE_STRING:
                raise ValueTooLong(name, v)
            if name in current:
                grow = ", " + text
            else:
                grow = (" OR " if current else "") + opening + text
            if enc + encoded_len(grow) > MAX_ENCODED_QUERY or raw + len(grow) > MAX_SOQL:
                flush()
                current, enc, raw = {}, fixed_enc, fixed_raw
                grow = opening + text
            current.setdefault(name, []).append(v)
            enc += encoded_len(grow)
            raw += len(grow)
    flush()
    return statements
