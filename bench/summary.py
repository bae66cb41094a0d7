"""`make bench`'s summary: every measured figure beside its lower bound, the previous release and
issue 18's target. A pure function of the rows (tests/test_bench_summary.py), so the table's shape
does not depend on a run."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    section: str                 # one table per section, in the order they first appear
    what: str
    unit: str                    # "calls/1k", "s", "msgs/s", "bytes", ...
    now: float | None            # None: not measured in this run
    bound: float | None = None   # the lower bound (or floor) for this figure, where one exists
    before: float | None = None  # the previous release (bench/previous.py)
    target: str = ""             # issue 18's target, as text
    note: str = ""


def number(x: float | None) -> str:
    if x is None:
        return "–"
    if x == int(x) and abs(x) >= 100:
        return f"{int(x):,}"
    return f"{x:,.1f}"


def ratio(now: float | None, base: float | None) -> str:
    """now / base as "1.2×"; "=" when both are 0; "–" when either is missing or only the base is 0."""
    if now is None or base is None:
        return "–"
    if base == 0:
        return "=" if now == 0 else "–"
    return f"{now / base:.2f}×"


def summary_table(rows: Iterable[Row]) -> str:
    sections: dict[str, list[Row]] = {}
    for r in rows:
        sections.setdefault(r.section, []).append(r)
    out: list[str] = []
    head = ["", "unit", "now", "lower bound", "now / bound", "previous release", "now / previous", "target", "note"]
    for section, items in sections.items():
        out += [f"### {section}", "", "| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        for r in items:
            cells = [r.what, r.unit, "not run" if r.now is None else number(r.now), number(r.bound),
                     ratio(r.now, r.bound), number(r.before), ratio(r.now, r.before), r.target or "–", r.note]
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        out.append("")
    return "\n".join(out)
