"""Preflight on every run (issue 9): the mapping is checked against the org's describes, fetched
in one /composite call and cached in the state store for a day, before any message is taken."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

import pytest
from jbtest import cli, open_config_state, sample, write_config

import connector
from connector.config import load_config
from connector.mapping import load_mapping_set
from connector.preflight import fetch_describes, mapped_objects, preflight
from connector.state import open_state
from connector.state import rows as R
from connector.wiring import build_gateway
from connector_devkit.emulator import Org

pytestmark = pytest.mark.e2e

DEFAULTS = Path(connector.__file__).parent / "default_mappings"


def _person_mapping(tmp_path: Path, old: str, new: str) -> tuple[Path, int]:
    folder = tmp_path / "mappings"
    shutil.copytree(DEFAULTS, folder)
    person = folder / "person.yaml"
    text = person.read_text(encoding="utf-8")
    assert old in text
    person.write_text(text.replace(old, new, 1), encoding="utf-8")
    line = next(i for i, s in enumerate(person.read_text(encoding="utf-8").splitlines(), 1) if new.strip() in s)
    return folder, line


def test_a_field_the_org_lacks_stops_the_run_before_any_message(tmp_path, emu, memq):
    folder, line = _person_mapping(tmp_path, "- field: Title", "- field: Job_Title__c")
    cfg = write_config(tmp_path, emu, memq, mapping__path=str(folder))
    memq.publish(sample("person"))
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 2, res.stderr
    assert re.search(rf"person\.yaml:{line}: field Lead\.Job_Title__c does not exist in the org", res.stderr), \
        res.stderr
    assert memq.depth() == 1  # the message stays queued
    assert emu.org.records("Lead") == [] and emu.org.records("Campaign") == []
    assert dict(emu.calls_by_kind) == {"composite": 1}  # the describes, in one request


def test_an_org_without_the_lead_source_value_stops_the_run(tmp_path, emu, memq):
    emu.org = Org(lead_sources=["Web", "Other"])  # the admin skipped the documented step
    cfg = write_config(tmp_path, emu, memq)
    memq.publish(sample("person"))
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 2, res.stderr
    assert "'Jomablue' is not a value of this restricted picklist" in res.stderr
    assert memq.depth() == 1


def test_describes_are_fetched_once_and_cached_for_a_day(tmp_path, emu, memq, monkeypatch):
    cfg = write_config(tmp_path, emu, memq)
    memq.publish(sample("event"))
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0, res.stderr
    assert emu.calls_by_kind["composite"] >= 1
    store = open_config_state(cfg)
    cached = {k: v["fetched_at"] for k, v in store.describes().items()}
    assert {"Lead", "Contact", "Campaign", "CampaignMember", "CampaignMemberStatus"} <= set(cached)
    # an empty queue and a fresh cache: the next run costs no call at all
    emu.reset_counters()
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0, res.stderr
    assert emu.api_calls == 0
    # a day later the describes are fetched again, in one call
    with monkeypatch.context() as m:      # only this write is stamped a day (and more) ago
        m.setattr(R, "now", lambda: "2000-01-01T00:00:00.000+00:00")
        store.put_describes({k: v["describe"] for k, v in store.describes().items()})
    store.close()
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0, res.stderr
    assert emu.api_calls == 1


def _wired(tmp_path, emu, memq):
    cfg = load_config(write_config(tmp_path, emu, memq))
    return build_gateway(cfg), open_state(tmp_path / "state.db"), load_mapping_set(None)


def test_all_describes_travel_in_one_composite_call(tmp_path, emu, memq, monkeypatch):
    monkeypatch.setenv("SF_CLIENT_SECRET", emu.client_secret)
    gateway, _state, ms = _wired(tmp_path, emu, memq)
    names = mapped_objects(ms) + ["No_Such_Object__c"]
    assert len(names) >= 6
    describes = asyncio.run(fetch_describes(gateway, names))
    assert emu.api_calls == 1
    assert describes["No_Such_Object__c"] is None
    assert describes["Lead"]["name"] == "Lead" and describes["Lead"]["fields"]


def test_preflight_refresh_and_clean_report(tmp_path, emu, memq, monkeypatch):
    monkeypatch.setenv("SF_CLIENT_SECRET", emu.client_secret)
    gateway, state, ms = _wired(tmp_path, emu, memq)
    report = asyncio.run(preflight(gateway, state, ms))
    assert report.fetched and report.problems == []
    again = asyncio.run(preflight(gateway, state, ms))
    assert not again.fetched and emu.api_calls == 1
    # the org changed (an admin made LeadSource lose the value): a refresh sees it
    emu.org = Org(lead_sources=["Web"])
    refreshed = asyncio.run(preflight(gateway, state, ms, refresh=True))
    assert refreshed.fetched and refreshed.errors
