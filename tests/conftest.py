"""Fixtures for every test: the helpers live in jbtest.py (a unique module name, so that test
files in any folder can `from jbtest import ...` without clashing with other conftest modules)."""

import os
import tempfile
from pathlib import Path

import pytest
from jbtest import (  # noqa: F401  (pytest fixtures)
    _clean_env,
    _mapping_yaml_parsed_once,
    _mappings_compiled_once,
    aws,
    emu,
    emulator_server,
    memq,
    moto_endpoint,
)


def pytest_configure(config):
    """Temporary directories on tmpfs when the machine has one and TMPDIR does not say otherwise.

    The state store commits with fsync (SQLite synchronous=FULL, as production must); on a shared
    disk that was a third of the wall time of the in-process tests, and it tests nothing here.
    """
    shm = Path("/dev/shm")
    if not os.environ.get("TMPDIR") and shm.is_dir() and os.access(shm, os.W_OK):
        tempfile.tempdir = str(shm)


def pytest_collection_modifyitems(config, items):
    """Tests on the moto server (`aws`, `moto_endpoint`) are the slow tier with the subprocess ones:
    they get the `process` marker too, so `pytest -m "not process"` is the quick loop."""
    for item in items:
        if "moto_endpoint" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.process)
