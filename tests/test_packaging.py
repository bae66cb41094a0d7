"""The runtime install is only the runtime: `pip install .` brings no emulator, demo or test dependency."""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
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


# -- issue 17: the devkit is an extra of this distribution; the test extra declares what tests use ---
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
OURS = {"connector", "connector_devkit", "jbtest", "jbbrowser", "pgtest", "conftest", "tests", "bench"}


def _third_party_imports(*folders: str) -> set[str]:
    """Top-level modules imported anywhere under `folders` (at any depth of the code) that are
    neither the standard library nor the project's own."""
    found: set[str] = set()
    for folder in folders:
        for path in (REPO / folder).rglob("*.py"):
            found |= _imports_of(path)
    tests = list((REPO / "tests").rglob("*"))
    local = {p.stem for p in tests if p.suffix == ".py"} | {p.name for p in tests if p.is_dir()}
    local |= {p.stem for p in (REPO / "bench").glob("*.py")}     # bench modules its own tests import
    return {m for m in found if m not in sys.stdlib_module_names and m not in OURS | local}


def _closure(requirements: list[str]) -> set[str]:
    """The distributions these requirements install, with what they depend on (as installed here)."""
    seen: set[str] = set()
    todo = [(_name(r), set(re.findall(r"\[([^\]]*)\]", r)[0].split(",")) if "[" in r.split(";")[0] else set())
            for r in requirements]
    while todo:
        name, extras = todo.pop()
        key = (name + "[" + ",".join(sorted(extras)) + "]").replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for r in requires:
            marker = r.split(";", 1)[1] if ";" in r else ""
            wanted = re.findall(r'extra == "([^"]+)"', marker)
            if wanted and not set(wanted) & extras:
                continue
            inner = re.findall(r"\[([^\]]*)\]", r.split(";")[0])
            todo.append((_name(r), set(inner[0].split(",")) if inner else set()))
    return {k.split("[")[0] for k in seen}


def _declared(*extras: str) -> set[str]:
    reqs = list(PROJECT["dependencies"])
    for extra in extras:
        reqs += PROJECT["optional-dependencies"][extra]
    return _closure(reqs)


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _undeclared(imports: set[str], declared: set[str]) -> set[str]:
    distributions = _distributions()
    missing = set()
    for module in imports:
        names = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        if not names & declared:
            missing.add(f"{module} ({', '.join(sorted(names))})")
    return missing


def test_the_test_extra_declares_everything_the_tests_import():
    # tests/jbtest.py imports the emulator (trustme) and starts moto: `test` brings the devkit.
    assert any(_name(r) == "jomablue-salesforce-connector" and "devkit" in r
               for r in PROJECT["optional-dependencies"]["test"])
    assert _undeclared(_third_party_imports("tests"), _declared("test")) == set()


def test_the_devkit_extra_declares_everything_the_devkit_imports():
    assert _undeclared(_third_party_imports("connector_devkit"), _declared("devkit")) == set()


def test_the_runtime_declares_everything_the_connector_imports():
    assert _undeclared(_third_party_imports("connector"), _declared()) == set()


def test_the_image_is_built_without_the_devkit():
    """The Dockerfile copies the runtime package only, so the wheel it builds has no connector_devkit/."""
    copies = [line.split()[1] for line in (REPO / "Dockerfile").read_text(encoding="utf-8").splitlines()
              if line.startswith("COPY") and "--from" not in line]
    assert "connector" in copies and not any(c.startswith("connector_devkit") for c in copies), copies


def test_ruff_checks_the_line_length_it_sets():
    ruff = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["ruff"]
    assert ruff["line-length"] == 120 and "E501" in ruff["lint"]["select"]


def test_only_the_state_backends_import_the_postgresql_driver():
    """The CLI names every store's failure without importing psycopg (issue 17)."""
    importers = sorted(str(path.relative_to(REPO)) for path in (REPO / "connector").rglob("*.py")
                       if "psycopg" in _imports_of(path))
    assert all(p.startswith("connector/state/") for p in importers), importers


def _imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names
