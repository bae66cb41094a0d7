"""A `mapping.path` folder holding no mapping file is a configuration error (issue 16), through
the CLI: `run` exits 2 with every message still queued, `mapping validate` says the same
instead of "mapping ok"; a folder missing only some files still skips the unmapped types."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from jbtest import cli, sample, write_config

from connector.mapping import default_mapping_folder

pytestmark = pytest.mark.e2e


def _nested(tmp_path: Path) -> Path:
    """mappings/ holding the files one folder deeper (mappings/jomablue/person.yaml ...)."""
    top = tmp_path / "mappings"
    shutil.copytree(default_mapping_folder(), top / "jomablue", ignore=shutil.ignore_patterns("examples"))
    (top / "notes.txt").write_text("not a mapping\n", encoding="utf-8")
    return top


def test_run_on_a_folder_without_mapping_files_exits_2_and_keeps_every_message(tmp_path, emu, memq):
    folder = _nested(tmp_path)
    for kind in ("event", "person"):
        memq.publish(sample(kind))
    cfg = write_config(tmp_path, emu, memq, mapping__path=str(folder))
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 2, res.stdout + res.stderr
    assert "no mapping file in this folder" in res.stderr
    assert "person.yaml" in res.stderr and "session_participation.yaml" in res.stderr
    assert f"did you mean {folder / 'jomablue'}/" in res.stderr
    assert memq.depth() == 2                 # nothing skipped, nothing deleted
    assert emu.api_calls == 0


def test_validate_says_the_same_instead_of_mapping_ok(tmp_path, emu, memq):
    empty = tmp_path / "typo"
    empty.mkdir()
    cfg = write_config(tmp_path, emu, memq, mapping__path=str(empty))
    res = cli("mapping", "validate", "--config", str(cfg))
    assert res.returncode == 2
    assert "mapping ok" not in res.stdout
    assert f"{empty}: no mapping file in this folder (expected one or more of event.yaml, person.yaml, " \
           "session_participation.yaml, lead.yaml)" in res.stderr
    assert "did you mean" not in res.stderr

    nested = _nested(tmp_path)
    cfg = write_config(tmp_path, emu, memq, mapping__path=str(nested))
    res = cli("mapping", "validate", "--config", str(cfg))
    assert res.returncode == 2 and f"did you mean {nested / 'jomablue'}/?" in res.stderr


def test_a_type_left_unmapped_on_purpose_is_still_a_skip(tmp_path, emu, memq):
    folder = tmp_path / "only-events"
    folder.mkdir()
    shutil.copy(default_mapping_folder() / "event.yaml", folder / "event.yaml")
    cfg = write_config(tmp_path, emu, memq, mapping__path=str(folder))
    res = cli("mapping", "validate", "--config", str(cfg))
    assert res.returncode == 0 and "mapping ok" in res.stdout
    memq.publish(sample("event"))
    memq.publish(sample("person"))
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0, res.stdout + res.stderr
    assert memq.depth() == 0
