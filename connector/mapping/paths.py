"""Dotted source paths: ``identifiers.email``, ``data.categories[*].id``, ``data.tags[0]``.

A path is parsed once into steps and compiled into a getter. ``[*]`` collects a list (nested
``[*]`` flatten); anything missing or of the wrong shape yields ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Getter = Callable[[Any], Any]

_SEGMENT = re.compile(r"([^.\[\]\s]+)((?:\[(?:\*|\d+)\])*)")
_INDEX = re.compile(r"\[(\*|\d+)\]")


class PathError(ValueError):
    pass


Step = tuple[str, Any]  # ("key", name) | ("index", n) | ("all", None)


def parse_path(path: str) -> list[Step]:
    """Split a path into steps.

    Raises:
        PathError: when the text is not a path.
    """
    if not isinstance(path, str) or not path.strip():
        raise PathError("a path must be a non-empty string")
    steps: list[Step] = []
    for part in path.split("."):
        m = _SEGMENT.fullmatch(part)
        if not m:
            raise PathError(f"invalid path {path!r} (near {part!r})")
        steps.append(("key", m.group(1)))
        for idx in _INDEX.findall(m.group(2)):
            steps.append(("all", None) if idx == "*" else ("index", int(idx)))
    return steps


def normalise(path: str) -> str:
    """The path with every ``[n]`` written as ``[*]`` (for comparing against known shapes)."""
    return re.sub(r"\[\d+\]", "[*]", path)


def has_wildcard(path: str) -> bool:
    return "[*]" in path


def _step(value: Any, kind: str, arg: Any) -> Any:
    if kind == "key":
        return value.get(arg) if isinstance(value, dict) else None
    if isinstance(value, list) and -len(value) <= arg < len(value):
        return value[arg]
    return None


def compile_path(path: str) -> Getter:
    """Compile a path into ``getter(obj) -> value``; lists for ``[*]`` paths."""
    steps = parse_path(path)
    if not any(kind == "all" for kind, _ in steps):
        def get_scalar(obj: Any) -> Any:
            for kind, arg in steps:
                obj = _step(obj, kind, arg)
                if obj is None:
                    return None
            return obj
        return get_scalar

    def get_many(obj: Any) -> Any:
        values: list[Any] = [obj]
        for kind, arg in steps:
            if kind == "all":
                values = [item for v in values if isinstance(v, list) for item in v]
            else:
                values = [x for x in (_step(v, kind, arg) for v in values) if x is not None]
        return values
    return get_many
