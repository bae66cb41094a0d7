"""YAML loading that remembers where every key and list item came from.

Mappings become :class:`LineDict` / :class:`LineList` (plain ``dict``/``list`` subclasses) whose
``key_line(key)`` / ``item_line(i)`` give 1-based line numbers, so every problem can point at the
offending key. Only the safe constructors are used, and ISO dates stay strings (a quoted or
unquoted ``2025-01-01`` is the same text to an admin).
"""

from __future__ import annotations

from typing import Any

import yaml


class LineDict(dict[Any, Any]):
    """A mapping node: ``line`` is where it starts, ``key_line(k)`` where key ``k`` is."""

    line: int = 1

    def __init__(self) -> None:
        super().__init__()
        self.key_lines: dict[Any, int] = {}
        self.duplicates: list[tuple[Any, int]] = []

    def key_line(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    """A sequence node: ``line`` is where it starts, ``item_line(i)`` where item ``i`` is."""

    line: int = 1

    def __init__(self) -> None:
        super().__init__()
        self.item_lines: list[int] = []

    def item_line(self, index: int) -> int:
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line


class _Loader(yaml.SafeLoader):
    pass


# Keep ISO dates/timestamps as text: constants are strings, numbers and booleans only.
_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            hash(key)
        except TypeError:
            key = str(key)
        if key in result:
            result.duplicates.append((key, line))
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList()
    result.line = node.start_mark.line + 1
    for child in node.value:
        result.append(loader.construct_object(child, deep=True))
        result.item_lines.append(child.start_mark.line + 1)
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


class YamlSyntaxError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


# What to check, by the words of PyYAML's problem (first match wins).
_HINTS: tuple[tuple[str, str], ...] = (
    ("'\\t'", "a tab character: indent with spaces only (YAML does not allow tabs)"),
    ("mapping values are not allowed", "a ':' where YAML did not expect one: quote a value that contains ': ' "
                                       "(name: \"a: b\"), or check this line's indentation against the line above"),
    ("could not find expected ':'", "a line that is not 'key: value': a missing ':' after the key, or a "
                                    "continuation line indented like a key"),
    ("expected ',' or ']'", "an unclosed [ ... ] list: close it with ']' (or write one item per line, each starting "
                            "with '- ')"),
    ("expected ',' or '}'", "an unclosed { ... } mapping: close it with '}'"),
    ("expected <block end>", "an item indented differently from the ones before it: a '- ' list item or a key "
                             "must line up with its siblings"),
    ("did not find expected key", "a key or list item indented differently from its siblings"),
    ("did not find expected '-'", "a list item ('- ') indented differently from its siblings"),
    ("found undefined alias", "a value starting with '*' must be quoted"),
    ("found character", "a value starting with '@', '`', '%' or another reserved character must be quoted"),
    ("found unexpected end of stream", "an unclosed quote: every ' or \" that opens a value must close it"),
    ("found unknown escape character", "a backslash inside a double-quoted value: use single quotes, or write \\\\"),
)


def _hint(problem: str) -> str | None:
    return next((hint for words, hint in _HINTS if words in problem), None)


def load_yaml(text: str) -> Any:
    """Parse one YAML document into LineDict/LineList/scalars.

    Raises:
        YamlSyntaxError: with the 1-based line of the problem, what to check and the line itself.
    """
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader derives from SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = exc.problem or str(exc)
        hint = _hint(what)
        message = f"YAML syntax error: {hint}" if hint else f"YAML syntax error: {what}"
        if exc.context and exc.context_mark is not None and exc.context_mark.line + 1 != line:
            message += f" (it opened at line {exc.context_mark.line + 1})"
        lines = text.splitlines()
        if 0 < line <= len(lines) and lines[line - 1].strip():
            shown = lines[line - 1].replace("\t", "→").rstrip()
            message += f"; line {line} reads: {shown[:120]!r}"
        raise YamlSyntaxError(line, message) from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(1, f"YAML syntax error: {exc}") from exc
