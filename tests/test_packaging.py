"""The runtime install is only the runtime: `pip install .` brings no emulator, demo or test dependency."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEV_ONLY = {"moto", "flask", "trustme", "cfn-lint", "werkzeug", "pytest", "responses", "hypothesis", "ruff",
            "pydantic-settings"}


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()


def test_the_declared_runtime_dependencies_carry_nothing_of_the_devkit_or_the_tests():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = {_name(r) for r in project["dependencies"]}
    assert not runtime & DEV_ONLY, runtime & DEV_ONLY
    assert {"moto", "trustme"} <= {_name(r) for r in project["optional-dependencies"]["devkit"]}


def test_the_installed_metadata_agrees():
    requires = importlib.metadata.requires("jomablue-salesforce-connector") or []
    unconditional = {_name(r) for r in requires if "extra ==" not in r}
    assert not unconditional & DEV_ONLY, unconditional & DEV_ONLY


def test_the_runtime_package_never_imports_the_devkit_or_dev_only_libraries_at_module_level():
    """Every module under connector/ imports, at its top, only the runtime's libraries."""
    offenders = []
    for path in (REPO / "connector").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0].lower()
                if top in {"moto", "trustme", "flask", "werkzeug", "connector_devkit", "pytest", "responses"}:
                    offenders.append(f"{path.relative_to(REPO)}: {name}")
    assert offenders == []
