"""`connector demo` (what `make demo` runs) works end to end and shows what landed.

In process (the demo embeds its own moto server and emulator either way); `make demo` itself is
the same command in its own interpreter.
"""

from __future__ import annotations

from jbtest import cli


def test_demo_runs_the_whole_pipeline_and_reports():
    res = cli("demo")
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout
    assert "서울 고객 서밋 2026" in out and "Sonic Conference 2026 🎧" in out
    assert "category acme/category/21 renamed 'VIP' → 'VIP Guest'" in out
    assert "quarantined" in out and "skipped_unknown_type" in out
    assert "Reconciliation:" in out and "(fixed)" in out
