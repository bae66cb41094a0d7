"""The bench's summary table (bench/summary.py) is a pure function of its rows."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from summary import Row, ratio, summary_table  # noqa: E402


def test_rows_are_grouped_by_section_with_bound_previous_and_ratios():
    md = summary_table([
        Row("Backlog shapes", "602-message queue", "calls/1k", 6.6, bound=5.0, before=10.0, target="≤ 1.5× bound"),
        Row("Live", "20/s: lag p99", "s", 5.5, before=6.2, target="≤ 7 s"),
        Row("Backlog shapes", "repeats", "calls/1k", 0.0, bound=0.0, before=0.0),
        Row("Store", "bytes per person", "bytes", None, before=1320.0, target="≤ 500"),
    ])
    lines = md.splitlines()
    assert [line for line in lines if line.startswith("### ")] == ["### Backlog shapes", "### Live", "### Store"]
    assert "| 602-message queue | calls/1k | 6.6 | 5.0 | 1.32× | 10.0 | 0.66× | ≤ 1.5× bound |  |" in lines
    assert "| repeats | calls/1k | 0.0 | 0.0 | = | 0.0 | = | – |  |" in lines
    assert "| 20/s: lag p99 | s | 5.5 | – | – | 6.2 | 0.89× | ≤ 7 s |  |" in lines
    assert "| bytes per person | bytes | not run | – | – | 1,320 | – | ≤ 500 |  |" in lines
    # each section's rows follow its own header
    assert lines.index("### Live") > lines.index("| repeats | calls/1k | 0.0 | 0.0 | = | 0.0 | = | – |  |")


def test_ratio_is_undefined_against_a_zero_bound_unless_now_is_zero():
    assert ratio(3.0, 0.0) == "–" and ratio(0.0, 0.0) == "=" and ratio(None, 2.0) == "–"
