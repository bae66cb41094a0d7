"""Fixtures for every test: the helpers live in jbtest.py (a unique module name, so that test
files in any folder can `from jbtest import ...` without clashing with other conftest modules)."""

from jbtest import _clean_env, _mappings_compiled_once, aws, emu, emulator_server, memq, moto_endpoint  # noqa: F401  (pytest fixtures)
