"""The one SOQL query builder: `IN` lists packed into as few statements as Salesforce accepts.

Three limits bound a statement:
- a SOQL statement may be at most 100,000 characters (:data:`MAX_SOQL`; App Limits cheatsheet,
  "SOQL and SOSL Limits for Search Queries": "By default, 100,000 characters",
  https://developer.salesforce.com/docs/atlas.en-us.salesforce_app_limits_cheatsheet.meta/salesforce_app_limits_cheatsheet/salesforce_app_limits_platform_soslsoql.htm);
- a string in a WHERE clause may be at most 4,000 characters (:data:`MAX_WHERE_STRING`; same
  cheatsheet: "Strings in SOQL WHERE clauses: 4,000 characters for each string"; SOQL and SOSL
  Reference, "WHERE": "Strings in WHERE clauses can't exceed 4,000 characters");
- the same cheatsheet allows "500 IDs per query" of junction ids (CampaignMember is one:
  Campaign × Lead/Contact) and answers MALFORMED_QUERY past it; read conservatively, no `IN`
  list here holds more than :data:`MAX_IN_LIST` values, whatever the field.
The URL's 16,384-byte limit (Salesforce Help 000386264) does not bound a statement: a query too
long for a GET travels as a /composite subrequest, whose URL is in the request body, as that
article recommends (connector/salesforce/paging.py, gateway.query_many). So one lookup query
carries about 500 people, not the ~200 a URL held (issue #18).
Values are escaped by simple-salesforce's ``format_soql``; a single value that cannot fit any
statement raises :class:`ValueTooLong`, so the caller fails that value's message, not the batch.
"""

from __future__ import annotations

from collections.abc import Iterable

from simple_salesforce.format import format_soql

MAX_SOQL = 100_000
MAX_WHERE_STRING = 4_000
MAX_IN_LIST = 500


class ValueTooLong(ValueError):
    def __init__(self, field: str, value: str) -> None:
        limit = (f"a SOQL WHERE string holds at most {MAX_WHERE_STRING:,} characters"
                 if not _short_enough(value) else "too long for any SOQL query")
        super().__init__(f"a {field} of {len(value):,} characters: {limit}")
        self.field = field
        self.value = value


def literal(value: str) -> str:
    return format_soql("{}", value)


def _short_enough(value: str) -> bool:
    """Within the WHERE-clause string limit, counted as escaped (the stricter reading)."""
    return len(literal(value)) - 2 <= MAX_WHERE_STRING


def fits(value: str, room: int = 2_000) -> bool:
    """Whether one value can travel in a statement with `room` bytes left for the rest."""
    text = literal(value)
    return _short_enough(value) and len(text) + room <= MAX_SOQL


def pack_or(head: str, clauses: Iterable[tuple[str, Iterable[str]]], tail: str = "") -> list[str]:
    """`head + (f1 IN (...) OR f2 IN (...)) + tail`, split so every statement fits the limits above.

    `head` ends where the condition starts ("SELECT Id FROM Lead WHERE "); `tail` closes what
    head opened, if anything. Values are de-duplicated and sorted (stable statements). Each
    field's values are cut into lists of MAX_IN_LIST and the i-th lists of every field share a
    statement (a batch's ids and emails travel side by side), which is split further only where
    it would pass MAX_SOQL characters.
    """
    fixed = len(head + tail)
    lists: list[list[tuple[str, list[str]]]] = []     # statement i → [(field, its i-th list, escaped)]
    for name, values in clauses:
        if not name:
            continue
        texts = []                        # each value escaped once, as the statement carries it
        for v in sorted({str(x) for x in values if x}):
            text = literal(v)
            if fixed + len(f"{name} IN ()") + len(text) > MAX_SOQL or len(text) - 2 > MAX_WHERE_STRING:
                raise ValueTooLong(name, v)
            texts.append(text)
        for i in range(0, len(texts), MAX_IN_LIST):
            if len(lists) <= i // MAX_IN_LIST:
                lists.append([])
            lists[i // MAX_IN_LIST].append((name, texts[i:i + MAX_IN_LIST]))
    statements: list[str] = []
    for parts in lists:
        current: dict[str, list[str]] = {}
        size = fixed                      # the length of the statement being built
        for name, texts in parts:
            for text in texts:
                grow = ", " + text if name in current else (" OR " if current else "") + f"{name} IN ()" + text
                if size + len(grow) > MAX_SOQL:
                    statements.append(_statement(head, current, tail))
                    current, size = {}, fixed
                    grow = f"{name} IN ()" + text
                current.setdefault(name, []).append(text)
                size += len(grow)
        if current:
            statements.append(_statement(head, current, tail))
    return statements


def _statement(head: str, lists: dict[str, list[str]], tail: str) -> str:
    """The statement of these escaped `IN` lists."""
    return head + " OR ".join(f"{name} IN ({', '.join(texts)})" for name, texts in lists.items()) + tail
