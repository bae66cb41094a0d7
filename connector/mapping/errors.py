"""Problems found while loading or validating a mapping folder, and the exception that carries them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One finding, pointing at the line of the offending YAML key.

    ``str(problem)`` is the ``file:line: message`` form the CLI prints (warnings say so).
    """

    file: str
    line: int
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        # Line 0: the problem is the folder or a setting as a whole (no line to point at).
        where = f"{self.file}:{self.line}" if self.line > 0 else self.file
        if self.severity == "warning":
            return f"{where}: warning: {self.message}"
        return f"{where}: {self.message}"


class MappingError(Exception):
    """The mapping folder has at least one error; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        lines = "\n".join(str(p) for p in errors[:20])
        more = f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{len(errors)} mapping error(s):\n{lines}{more}")


class Problems:
    """Collector used during one compile: every problem of one run, in order."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def error(self, file: str, line: int, message: str) -> None:
        self.items.append(Problem(file, line, message, "error"))

    def warning(self, file: str, line: int, message: str) -> None:
        self.items.append(Problem(file, line, message, "warning"))

    @property
    def has_errors(self) -> bool:
        return any(p.severity == "error" for p in self.items)
