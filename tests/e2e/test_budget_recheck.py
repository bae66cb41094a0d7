"""A run that starts after an exhausted one looks at the budget again (issue 10, item 5): one
/limits call past the guard instead of trusting the stored reading and exiting 75."""

from __future__ import annotations

import pytest
from jbtest import cli, open_config_state, sample, write_config

pytestmark = pytest.mark.e2e


def _spent(cfg) -> None:
    store = open_config_state(cfg)
    store.put_api_usage(95_000, 100_000)       # a fresh reading: 95 % used, budget 80 %
    store.close()


def test_a_raised_limit_lets_the_run_proceed(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq)
    _spent(cfg)
    emu.org.set_api_usage(95_000, 1_000_000)   # the admin raised the org's allocation meanwhile
    memq.publish(sample("event"))
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0, res.stderr
    assert memq.depth() == 0
    assert [c["Jomablue_Id__c"] for c in emu.org.records("Campaign")] == ["acme/event/521"]
    assert emu.calls_by_kind.get("limits") == 1


def test_a_budget_still_spent_stops_after_one_look(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq)
    _spent(cfg)
    emu.org.set_api_usage(95_000, 100_000)
    memq.publish(sample("event"))
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 75, res.stderr
    assert "budget" in res.stderr
    assert memq.depth() == 1 and emu.org.records("Campaign") == []
    assert emu.calls_by_kind == {"limits": 1}
