"""Mappings end to end (issue 4): an admin's YAML decides where the connector writes; validation."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from jbtest import cli, sample, write_config

import connector

pytestmark = pytest.mark.e2e

DEFAULTS = Path(connector.__file__).parent / "default_mappings"


def _copy(tmp_path: Path, edit) -> Path:
    folder = tmp_path / "mappings"
    shutil.copytree(DEFAULTS, folder)
    event = folder / "event.yaml"
    event.write_text(edit(event.read_text(encoding="utf-8")), encoding="utf-8")
    return folder


def test_renaming_a_target_field_changes_where_the_connector_writes(tmp_path, emu, memq):
    def edit(text: str) -> str:
        # Description now carries the venue; the short description is no longer mapped.
        text = text.replace("    - field: Description\n      source: data.short_description\n"
                            "      transforms: [trim, truncate]          # 32,000 characters\n", "")
        assert "data.short_description" not in text
        return text.replace("field: Jomablue_Venue__c", "field: Description")

    folder = _copy(tmp_path, edit)
    cfg = write_config(tmp_path, emu, memq, mapping__path=str(folder))
    res = cli("mapping", "validate", "--config", str(cfg), "--against-org")
    assert res.returncode == 0, res.stdout + res.stderr
    memq.publish(sample("event"))
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0, res.stderr
    [camp] = emu.org.records("Campaign")
    assert camp["Description"] == "ICC Sydney"
    assert not camp.get("Jomablue_Venue__c")


def test_validate_accepts_the_defaults(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq)
    res = cli("mapping", "validate", "--config", str(cfg))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "mapping ok" in res.stdout
    res = cli("mapping", "validate", "--config", str(cfg), "--against-org")
    assert res.returncode == 0, res.stdout + res.stderr


def test_typo_in_a_target_field_is_caught_against_the_org_with_a_suggestion(tmp_path, emu, memq):
    folder = _copy(tmp_path, lambda t: t.replace("field: Jomablue_Venue__c", "field: Jomablue_Venu__c"))
    line = next(i for i, s in enumerate((folder / "event.yaml").read_text().splitlines(), 1)
                if "Jomablue_Venu__c" in s)
    cfg = write_config(tmp_path, emu, memq, mapping__path=str(folder))
    res = cli("mapping", "validate", "--config", str(cfg), "--against-org")
    assert res.returncode == 2, res.stdout + res.stderr
    expected = rf"event\.yaml:{line}: .*Jomablue_Venu__c.*did you mean 'Jomablue_Venue__c'"
    assert re.search(expected, res.stderr), res.stderr


def test_invalid_mapping_fails_validation_and_run_refuses_to_start(tmp_path, emu, memq):
    folder = _copy(tmp_path, lambda t: t.replace("transforms: [trim, truncate]          # 32,000 characters",
                                                 "transforms: [trim, trunacte]"))
    line = next(i for i, s in enumerate((folder / "event.yaml").read_text().splitlines(), 1) if "trunacte" in s)
    cfg = write_config(tmp_path, emu, memq, mapping__path=str(folder))
    res = cli("mapping", "validate", "--config", str(cfg))
    assert res.returncode == 2, res.stdout + res.stderr
    assert re.search(rf"event\.yaml:{line}: .*unknown transform 'trunacte'", res.stderr), res.stderr

    memq.publish(sample("event"))
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 2, res.stderr
    assert f"event.yaml:{line}:" in res.stderr
    assert emu.api_calls == 0 and emu.org.records("Campaign") == []
    assert memq.depth() == 1
