"""The field-mapping engine: YAML mappings compiled once into plain functions.

Admins edit one YAML file per Jomablue resource type (see ``connector/default_mappings/README.md``).
:func:`load_mapping_set` compiles a folder at start-up; the per-message path only calls closures.
:func:`validate_mapping_folder` runs the same compile step and, given a describe function, the
checks against the org.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .compiler import compile_folder
from .errors import MappingError, Problem
from .model import (
    CategorySource,
    MappingSet,
    Matching,
    MembershipMapping,
    PersonMapping,
    RecordMapping,
    ResourceMapping,
    StatusDef,
    StatusPolicy,
)
from .validate import check_against_org

Describe = Callable[[str], "dict[str, Any] | None"]

__all__ = [
    "CategorySource", "MappingError", "MappingSet", "Matching", "MembershipMapping",
    "PersonMapping", "Problem", "RecordMapping", "ResourceMapping", "StatusDef", "StatusPolicy",
    "default_mapping_folder", "load_mapping_set", "validate_mapping_folder",
]


def default_mapping_folder() -> Path:
    """The mappings shipped with the package (``connector/default_mappings``)."""
    return Path(__file__).resolve().parent.parent / "default_mappings"


def load_mapping_set(folder: Path | None = None, *, describe: Describe | None = None) -> MappingSet:
    """Compile a mapping folder (``None``: the shipped defaults).

    Args:
        folder: the folder of ``event.yaml``, ``person.yaml``, ``session_participation.yaml``,
            ``lead.yaml`` (any may be missing: that resource type is then skipped).
        describe: optional; when given, ``truncate`` without an argument uses the org's field
            lengths instead of the default data model's.

    Raises:
        MappingError: when there is any error (warnings alone do not raise).
    """
    ms, problems = compile_folder(Path(folder) if folder is not None else default_mapping_folder(),
                                  describe)
    if problems.has_errors:
        raise MappingError(problems.items)
    return ms


def validate_mapping_folder(folder: Path | None = None, describe: Describe | None = None) -> list[Problem]:
    """Every problem (errors and warnings) of a mapping folder; org checks when ``describe`` is given.

    ``describe(sobject)`` returns the Salesforce describe dict, or None if the object does not exist.
    """
    ms, problems = compile_folder(Path(folder) if folder is not None else default_mapping_folder(),
                                  describe)
    if describe is not None:
        check_against_org(ms, describe, problems)
    return problems.items
