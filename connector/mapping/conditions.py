"""The ``when:`` expression language: tokenizer + recursive-descent parser, compiled to closures.

Grammar (lowest precedence first)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := operand [ ("==" | "!=") operand | ["not"] "in" "[" literal ("," literal)* "]" ]
    operand    := literal | path | "exists" "(" path ")" | "empty" "(" path ")" | "(" expr ")"
    literal    := 'string' | "string" | number | true | false | null

A bare operand is a truth test ("false", "0", "no" and empty values are false). Comparisons
coerce booleans ("true" == true) and numbers ("1200" == 1200); strings compare case-sensitively.
A ``[*]`` path (a list) equals a value, or is ``in`` a list, when any of its items is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .paths import PathError, compile_path

Condition = Callable[[Mapping[str, Any]], bool]
_Value = Callable[[Mapping[str, Any]], Any]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<num>-?\d+(?:\.\d+)?(?![\w\-/]))
    | (?P<op>==|!=|\(|\)|\[|\]|,)
    | (?P<word>[A-Za-z_][\w\-/]*(?:\[(?:\*|\d+)\])*(?:\.[\w\-/]+(?:\[(?:\*|\d+)\])*)*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null", "exists", "empty"}
_TRUE_WORDS = {"true", "1", "yes"}
_FALSE_WORDS = {"false", "0", "no", ""}


class ConditionError(ValueError):
    """A condition that does not parse; ``column`` is 1-based within the condition text."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"{message} at column {column}")
        self.column = column


@dataclass(frozen=True)
class _Tok:
    kind: str  # str num op word kw end
    text: str
    value: Any
    col: int


def tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            col = pos + len(text[pos:]) - len(text[pos:].lstrip()) + 1
            raise ConditionError(f"unexpected character {text[col - 1]!r}", col)
        kind = m.lastgroup or ""
        raw = m.group(kind)
        col = m.start(kind) + 1
        if kind == "str":
            value: Any = re.sub(r"\\(.)", r"\1", raw[1:-1])
        elif kind == "num":
            value = float(raw) if "." in raw else int(raw)
        elif kind == "word" and raw in _KEYWORDS:
            kind, value = "kw", raw
        else:
            value = raw
        toks.append(_Tok(kind, raw, value, col))
        pos = m.end()
    toks.append(_Tok("end", "", None, len(text) + 1))
    return toks


def truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE_WORDS
    if value is None:
        return False
    return bool(value)


def _coerce_pair(a: Any, b: Any) -> tuple[Any, Any]:
    if isinstance(a, bool) and isinstance(b, str):
        return a, b.strip().lower() in _TRUE_WORDS if b.strip().lower() in _TRUE_WORDS | _FALSE_WORDS else b
    if isinstance(b, bool) and isinstance(a, str):
        bb, aa = _coerce_pair(b, a)
        return aa, bb
    if isinstance(a, (int, float)) and not isinstance(a, bool) and isinstance(b, str):
        try:
            return a, float(b.strip())
        except ValueError:
            return a, b
    if isinstance(b, (int, float)) and not isinstance(b, bool) and isinstance(a, str):
        bb, aa = _coerce_pair(b, a)
        return aa, bb
    return a, b


def equals(a: Any, b: Any) -> bool:
    if isinstance(a, list) and not isinstance(b, list):
        return any(equals(item, b) for item in a)  # a [*] path matches when any item does
    a, b = _coerce_pair(a, b)
    if isinstance(a, bool) != isinstance(b, bool):
        return False  # True must not equal 1 / "x"
    return bool(a == b)


def is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    if isinstance(value, (list, dict)):
        return len(value) == 0
    return False


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = tokenize(text)
        self.i = 0
        self.paths: list[str] = []

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def _fail(self, expected: str) -> ConditionError:
        t = self.tok
        got = "end of condition" if t.kind == "end" else repr(t.text)
        return ConditionError(f"expected {expected}, found {got}", t.col)

    def _accept(self, kind: str, text: str) -> bool:
        if self.tok.kind == kind and self.tok.text == text:
            self.i += 1
            return True
        return False

    def _expect(self, kind: str, text: str) -> None:
        if not self._accept(kind, text):
            raise self._fail(repr(text))

    def parse(self) -> Condition:
        cond = self._or()
        if self.tok.kind != "end":
            raise self._fail("'and', 'or' or the end of the condition")
        return cond

    def _or(self) -> Condition:
        return self._joined("or", self._and, any)

    def _and(self) -> Condition:
        return self._joined("and", self._not, all)

    def _joined(self, word: str, part: Callable[[], Condition],
                combine: Callable[[Iterable[bool]], bool]) -> Condition:
        """`part (word part)*`: one part as it is, several combined (any for "or", all for "and")."""
        parts = [part()]
        while self._accept("kw", word):
            parts.append(part())
        if len(parts) == 1:
            return parts[0]
        return lambda msg: combine(p(msg) for p in parts)

    def _not(self) -> Condition:
        if self.tok.kind == "kw" and self.tok.text == "not" and not (
            self.toks[self.i + 1].kind == "kw" and self.toks[self.i + 1].text == "in"
        ):
            self.i += 1
            inner = self._not()
            return lambda msg: not inner(msg)
        return self._comparison()

    def _comparison(self) -> Condition:
        left = self._operand()
        t = self.tok
        if t.kind == "op" and t.text in ("==", "!="):
            self.i += 1
            right = self._operand()
            if t.text == "==":
                return lambda msg: equals(left(msg), right(msg))
            return lambda msg: not equals(left(msg), right(msg))
        negate = False
        if t.kind == "kw" and t.text == "not":
            self.i += 1
            negate = True
            if not (self.tok.kind == "kw" and self.tok.text == "in"):
                raise self._fail("'in' after 'not'")
        if self._accept("kw", "in"):
            items = self._list()

            def member(msg: Mapping[str, Any]) -> bool:
                v = left(msg)
                return any(equals(v, item) for item in items)
            if negate:
                return lambda msg: not member(msg)
            return member
        return lambda msg: truthy(left(msg))

    def _list(self) -> list[Any]:
        self._expect("op", "[")
        items: list[Any] = []
        if self._accept("op", "]"):
            return items
        while True:
            items.append(self._literal())
            if self._accept("op", "]"):
                return items
            if not self._accept("op", ","):
                raise self._fail("',' or ']'")

    def _literal(self) -> Any:
        t = self.tok
        if t.kind in ("str", "num"):
            self.i += 1
            return t.value
        if t.kind == "kw" and t.text in ("true", "false", "null"):
            self.i += 1
            return {"true": True, "false": False, "null": None}[t.text]
        raise self._fail("a literal (string, number, true, false or null)")

    def _path(self) -> Callable[[Any], Any]:
        t = self.tok
        if t.kind != "word":
            raise self._fail("a path")
        self.i += 1
        try:
            getter = compile_path(t.text)
        except PathError as exc:
            raise ConditionError(str(exc), t.col) from exc
        self.paths.append(t.text)
        return getter

    def _operand(self) -> _Value:
        t = self.tok
        if t.kind == "op" and t.text == "(":
            self.i += 1
            inner = self._or()
            self._expect("op", ")")
            return inner
        if t.kind == "kw" and t.text in ("exists", "empty"):
            self.i += 1
            self._expect("op", "(")
            getter = self._path()
            self._expect("op", ")")
            if t.text == "exists":
                return lambda msg: getter(msg) is not None
            return lambda msg: is_empty(getter(msg))
        if t.kind == "word":
            return self._path()
        if t.kind in ("str", "num") or (t.kind == "kw" and t.text in ("true", "false", "null")):
            value = self._literal()
            return lambda msg: value
        raise self._fail("a value (path, string, number, true, false or null)")


def parse_condition(text: Any) -> tuple[Condition, list[str]]:
    """Compile a condition; returns the predicate and the paths it reads.

    Raises:
        ConditionError: with the column where parsing failed.
    """
    if isinstance(text, bool):
        value = text
        return (lambda msg: value), []
    if not isinstance(text, str) or not text.strip():
        raise ConditionError("a condition must be a non-empty string", 1)
    parser = _Parser(text)
    return parser.parse(), parser.paths
