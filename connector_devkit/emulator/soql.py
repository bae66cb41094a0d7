"""The SOQL subset the connector uses: a tokenizer, a recursive-descent parser and an evaluator.

Grammar (keywords case-insensitive)::

    query      := SELECT select FROM name [WHERE or] [ORDER BY order (, order)*]
                  [LIMIT int] [OFFSET int]
    select     := COUNT ( ) | field (, field)*
    or         := and (OR and)*            -- AND binds tighter than OR
    and        := not (AND not)*
    not        := NOT not | ( or ) | cond
    cond       := field op literal | field [NOT] IN ( literal, ... ) | field [NOT] LIKE string
    order      := field [ASC|DESC] [NULLS FIRST|LAST]

Semantics follow Salesforce where the connector can observe them: string comparison is
case-insensitive except on case-sensitive fields (Jomablue_Id__c); ids compare in their
18-character form, so a 15-character literal matches; ``!=`` and ``NOT IN`` match nulls;
literals must have the field's type (quoted strings for text and ids, bare dates for date
fields), otherwise INVALID_QUERY_FILTER_OPERATOR as Salesforce answers.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from dataclasses import field as _field
from typing import Any, Callable

from connector.salesforce import schema as sf_schema

TEXT_TYPES = {"string", "textarea", "email", "phone", "picklist"}
ID_TYPES = {"id", "reference"}


class SoqlError(Exception):
    """A query Salesforce would reject; ``code`` is the REST errorCode (HTTP 400)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def malformed(message: str) -> SoqlError:
    return SoqlError("MALFORMED_QUERY", message)


# ----------------------------------------------------------------------------- tokenizer

@dataclass
class Token:
    kind: str  # IDENT STRING NUMBER DATE DATETIME OP LPAREN RPAREN COMMA EOF
    value: Any
    pos: int
    like: str | None = None  # for STRING: the LIKE pattern as a regex (escapes respected)


_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:?\d{2})"
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?![\dT])")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == "'":
            value, like, i = _read_string(text, i)
            tokens.append(Token("STRING", value, i, like))
        elif ch in "(),":
            tokens.append(Token({"(": "LPAREN", ")": "RPAREN", ",": "COMMA"}[ch], ch, i))
            i += 1
        elif ch in "=!<>":
            two = text[i : i + 2]
            if two in ("!=", "<=", ">=", "<>"):
                tokens.append(Token("OP", "!=" if two == "<>" else two, i))
                i += 2
            elif ch == "!":
                raise malformed(f"unexpected token: '!' at position {i}")
            else:
                tokens.append(Token("OP", ch, i))
                i += 1
        elif ch.isdigit() or ch in "+-.":
            m = _DATETIME.match(text, i)
            if m:
                tokens.append(Token("DATETIME", _parse_datetime_literal(m.group()), i))
                i = m.end()
                continue
            m = _DATE.match(text, i)
            if m:
                tokens.append(Token("DATE", _parse_date_literal(m.group()), i))
                i = m.end()
                continue
            m = _NUMBER.match(text, i)
            if not m:
                raise malformed(f"unexpected token: '{ch}' at position {i}")
            raw = m.group()
            tokens.append(Token("NUMBER", float(raw) if "." in raw else int(raw), i))
            i = m.end()
        elif ch.isalpha() or ch == "_":
            m = _IDENT.match(text, i)
            assert m is not None
            tokens.append(Token("IDENT", m.group(), i))
            i = m.end()
        else:
            raise malformed(f"unexpected token: '{ch}' at position {i}")
    tokens.append(Token("EOF", None, n))
    return tokens


def _read_string(text: str, start: int) -> tuple[str, str, int]:
    """Decode a quoted literal; also build its LIKE regex, where \\% and \\_ stay literal."""
    out: list[str] = []
    like: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "'":
            return "".join(out), "".join(like), i + 1
        if ch == "\\":
            if i + 1 >= len(text):
                break
            esc = text[i + 1]
            if esc in _ESCAPES:
                out.append(_ESCAPES[esc])
                like.append(re.escape(_ESCAPES[esc]))
            elif esc in "%_":
                out.append(esc)
                like.append(re.escape(esc))
            else:
                raise malformed(f"Invalid string literal: invalid escape sequence '\\{esc}'")
            i += 2
            continue
        out.append(ch)
        like.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    raise malformed("unterminated string literal")


def _parse_date_literal(raw: str) -> str:
    try:
        return _dt.date.fromisoformat(raw).isoformat()
    except ValueError:
        raise malformed(f"invalid date: {raw}") from None


def _parse_datetime_literal(raw: str) -> str:
    try:
        return format_datetime(_dt.datetime.fromisoformat(raw.replace("Z", "+00:00")))
    except ValueError:
        raise malformed(f"invalid date time: {raw}") from None


def format_datetime(value: _dt.datetime) -> str:
    """Salesforce's wire form, always UTC: 2025-09-10T23:04:49.880+0000 (sorts as text)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    value = value.astimezone(_dt.timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


# ----------------------------------------------------------------------------- parser

@dataclass
class Cond:
    field: str
    op: str  # = != < > <= >= IN NOTIN LIKE
    value: Any  # Token, or list[Token] for IN


@dataclass
class BoolOp:
    op: str  # AND OR NOT
    args: list[Any]


@dataclass
class Query:
    sobject: str
    fields: list[str] = _field(default_factory=list)
    count: bool = False
    where: Any = None
    order: list[tuple[str, bool, bool]] = _field(default_factory=list)  # field, desc, nulls_first
    limit: int | None = None
    offset: int = 0


class _Parser:
    def __init__(self, text: str):
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def is_kw(self, *words: str) -> bool:
        tok = self.peek()
        return tok.kind == "IDENT" and tok.value.upper() in words

    def expect_kw(self, word: str) -> None:
        if not self.is_kw(word):
            self.fail(f"expecting '{word}'")
        self.i += 1

    def expect(self, kind: str) -> Token:
        if self.peek().kind != kind:
            self.fail(f"expecting {kind}")
        return self.next()

    def fail(self, why: str) -> None:
        tok = self.peek()
        shown = "EOF" if tok.kind == "EOF" else repr(tok.value)
        raise malformed(f"unexpected token: {shown} at position {tok.pos} ({why})")

    def name(self) -> str:
        tok = self.expect("IDENT")
        return tok.value

    def parse(self) -> Query:
        self.expect_kw("SELECT")
        fields: list[str] = []
        count = False
        if self.is_kw("COUNT") and self.tokens[self.i + 1].kind == "LPAREN":
            self.i += 2
            self.expect("RPAREN")
            count = True
        else:
            fields.append(self.name())
            while self.peek().kind == "COMMA":
                self.i += 1
                fields.append(self.name())
        self.expect_kw("FROM")
        query = Query(sobject=self.name(), fields=fields, count=count)
        if self.is_kw("WHERE"):
            self.i += 1
            query.where = self.or_expr()
        if self.is_kw("ORDER"):
            self.i += 1
            self.expect_kw("BY")
            query.order.append(self.order_item())
            while self.peek().kind == "COMMA":
                self.i += 1
                query.order.append(self.order_item())
        if self.is_kw("LIMIT"):
            self.i += 1
            query.limit = self.non_negative_int()
        if self.is_kw("OFFSET"):
            self.i += 1
            query.offset = self.non_negative_int()
        if self.peek().kind != "EOF":
            self.fail("expecting end of query")
        return query

    def non_negative_int(self) -> int:
        tok = self.expect("NUMBER")
        if not isinstance(tok.value, int) or tok.value < 0:
            raise malformed(f"invalid integer: {tok.value}")
        return tok.value

    def order_item(self) -> tuple[str, bool, bool]:
        name = self.name()
        desc = False
        if self.is_kw("ASC", "DESC"):
            desc = self.next().value.upper() == "DESC"
        nulls_first = not desc  # Salesforce's default: nulls sort as the smallest value
        if self.is_kw("NULLS"):
            self.i += 1
            if not self.is_kw("FIRST", "LAST"):
                self.fail("expecting FIRST or LAST")
            nulls_first = self.next().value.upper() == "FIRST"
        return name, desc, nulls_first

    def or_expr(self) -> Any:
        args = [self.and_expr()]
        while self.is_kw("OR"):
            self.i += 1
            args.append(self.and_expr())
        return args[0] if len(args) == 1 else BoolOp("OR", args)

    def and_expr(self) -> Any:
        args = [self.not_expr()]
        while self.is_kw("AND"):
            self.i += 1
            args.append(self.not_expr())
        return args[0] if len(args) == 1 else BoolOp("AND", args)

    def not_expr(self) -> Any:
        if self.is_kw("NOT"):
            self.i += 1
            return BoolOp("NOT", [self.not_expr()])
        if self.peek().kind == "LPAREN":
            self.i += 1
            inner = self.or_expr()
            self.expect("RPAREN")
            return inner
        return self.condition()

    def condition(self) -> Cond:
        name = self.name()
        tok = self.peek()
        if tok.kind == "OP":
            self.i += 1
            return Cond(name, tok.value, self.literal())
        negate = False
        if self.is_kw("NOT"):
            self.i += 1
            negate = True
        if self.is_kw("IN"):
            self.i += 1
            self.expect("LPAREN")
            values = [self.literal()]
            while self.peek().kind == "COMMA":
                self.i += 1
                values.append(self.literal())
            self.expect("RPAREN")
            return Cond(name, "NOTIN" if negate else "IN", values)
        if self.is_kw("LIKE"):
            self.i += 1
            pattern = self.expect("STRING")
            cond = Cond(name, "LIKE", pattern)
            return BoolOp("NOT", [cond]) if negate else cond  # type: ignore[return-value]
        self.fail("expecting a comparison operator")
        raise AssertionError("unreachable")

    def literal(self) -> Token:
        tok = self.peek()
        if tok.kind in ("STRING", "NUMBER", "DATE", "DATETIME"):
            return self.next()
        if self.is_kw("TRUE", "FALSE", "NULL"):
            self.i += 1
            word = tok.value.upper()
            return Token("NULL" if word == "NULL" else "BOOL", None if word == "NULL" else word == "TRUE", tok.pos)
        self.fail("expecting a literal value")
        raise AssertionError("unreachable")


def parse(text: str) -> Query:
    return _Parser(text).parse()


# ----------------------------------------------------------------------------- evaluator

Record = dict[str, Any]
Objects = dict[str, dict[str, Any]]
Predicate = Callable[[Record], bool]


def resolve_field(sobject: str, name: str, objects: Objects | None = None) -> str:
    """The canonical spelling of a field name (SOQL names are case-insensitive)."""
    fields = (objects or sf_schema.OBJECTS)[sobject]["fields"]
    if name in fields:
        return name
    for canonical in fields:
        if canonical.lower() == name.lower():
            return canonical
    raise SoqlError(
        "INVALID_FIELD",
        f"No such column '{name}' on entity '{sobject}'. If you are attempting to use a custom "
        "field, be sure to append the '__c' after the custom field name. Please reference your "
        "WSDL or the describe call for the appropriate names.",
    )


def resolve_object(name: str, objects: Objects | None = None) -> str:
    for canonical in objects or sf_schema.OBJECTS:
        if canonical.lower() == name.lower():
            return canonical
    raise SoqlError("INVALID_TYPE", f"sObject type '{name}' is not supported.")


class Compiled:
    """A parsed query bound to the schema: canonical names and a record predicate."""

    def __init__(self, query: Query, normalise_id: Callable[[str], str | None],
                 objects: Objects | None = None):
        self.query = query
        self.objects = objects or sf_schema.OBJECTS
        self.sobject = resolve_object(query.sobject, self.objects)
        self._norm_id = normalise_id
        self.fields = [resolve_field(self.sobject, f, self.objects) for f in query.fields]
        seen: set[str] = set()
        for f in self.fields:
            if f in seen:
                raise malformed(f"duplicate field selected: {f}")
            seen.add(f)
        self.predicate: Predicate = self._compile(query.where) if query.where else (lambda r: True)
        self.order = [(resolve_field(self.sobject, f, self.objects), d, nf) for f, d, nf in query.order]

    # Each field type gets a key function: how stored values and literals are compared.
    def _key_fn(self, meta: dict[str, Any]) -> Callable[[Any], Any]:
        if meta["type"] in TEXT_TYPES and not meta["case_sensitive"]:
            return lambda v: v.lower() if isinstance(v, str) else v
        return lambda v: v

    def _literal(self, name: str, meta: dict[str, Any], tok: Token) -> Any:
        ftype = meta["type"]
        if tok.kind == "NULL":
            return None
        if ftype in TEXT_TYPES:
            if tok.kind != "STRING":
                raise _type_error(name, "string", "and should be enclosed in quotes")
            return tok.value
        if ftype in ID_TYPES:
            if tok.kind != "STRING":
                raise _type_error(name, "string", "and should be enclosed in quotes")
            normalised = self._norm_id(tok.value)
            if normalised is None:
                raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {tok.value}")
            return normalised
        if ftype == "boolean":
            if tok.kind != "BOOL":
                raise _type_error(name, "boolean", "and should not be enclosed in quotes")
            return tok.value
        if ftype in ("int", "double"):
            if tok.kind != "NUMBER":
                raise _type_error(name, "number", "and should not be enclosed in quotes")
            return tok.value
        if ftype == "date":
            if tok.kind != "DATE":
                raise _type_error(name, "date", "and should not be enclosed in quotes")
            return tok.value
        if ftype == "datetime":
            if tok.kind != "DATETIME":
                raise _type_error(name, "dateTime", "and should not be enclosed in quotes")
            return tok.value
        raise malformed(f"field '{name}' can not be filtered")

    def _compile(self, node: Any) -> Predicate:
        if isinstance(node, BoolOp):
            parts = [self._compile(a) for a in node.args]
            if node.op == "AND":
                return lambda r: all(p(r) for p in parts)
            if node.op == "OR":
                return lambda r: any(p(r) for p in parts)
            inner = parts[0]
            return lambda r: not inner(r)
        name = resolve_field(self.sobject, node.field, self.objects)
        meta = self.objects[self.sobject]["fields"][name]
        key = self._key_fn(meta)
        op = node.op
        if op in ("IN", "NOTIN"):
            wanted = {key(self._literal(name, meta, t)) for t in node.value}
            if op == "IN":
                return lambda r: r.get(name) is not None and key(r.get(name)) in wanted
            return lambda r: r.get(name) is None or key(r.get(name)) not in wanted
        if op == "LIKE":
            if meta["type"] not in TEXT_TYPES:
                raise SoqlError("INVALID_QUERY_FILTER_OPERATOR",
                                f"invalid operator on id/non-text field: {name} LIKE")
            rx = re.compile(node.value.like, re.IGNORECASE | re.DOTALL)
            return lambda r: isinstance(r.get(name), str) and rx.fullmatch(r[name]) is not None
        lit = self._literal(name, meta, node.value)
        if lit is None:
            if op == "=":
                return lambda r: r.get(name) is None
            if op == "!=":
                return lambda r: r.get(name) is not None
            raise malformed(f"null can only be compared with = or != ({name} {op} null)")
        want = key(lit)
        if op == "=":
            return lambda r: r.get(name) is not None and key(r[name]) == want
        if op == "!=":
            return lambda r: r.get(name) is None or key(r[name]) != want
        cmp = {
            "<": lambda a: a < want, ">": lambda a: a > want,
            "<=": lambda a: a <= want, ">=": lambda a: a >= want,
        }[op]
        if meta["type"] == "boolean":
            raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", f"invalid operator on boolean field: {name}")
        return lambda r: r.get(name) is not None and cmp(key(r[name]))

    def run(self, records: list[Record]) -> list[Record]:
        """Filter, sort and window the records (the caller holds the org lock)."""
        rows = [r for r in records if self.predicate(r)]
        for name, desc, nulls_first in reversed(self.order):
            meta = self.objects[self.sobject]["fields"][name]
            key = self._key_fn(meta)
            # Rank nulls so they land first/last after the (possibly reversed) sort.
            null_rank = (0 if nulls_first else 2) if not desc else (2 if nulls_first else 0)

            def sort_key(r: Record, key=key, name=name, null_rank=null_rank) -> tuple:
                v = r.get(name)
                return (null_rank, 0) if v is None else (1, key(v))

            rows.sort(key=sort_key, reverse=desc)
        q = self.query
        end = None if q.limit is None else q.offset + q.limit
        return rows[q.offset : end]


def _type_error(name: str, type_name: str, hint: str) -> SoqlError:
    return SoqlError(
        "INVALID_QUERY_FILTER_OPERATOR",
        f"value of filter criterion for field '{name}' must be of type {type_name} {hint}",
    )


def compile_query(text: str, normalise_id: Callable[[str], str | None],
                  objects: Objects | None = None) -> Compiled:
    return Compiled(parse(text), normalise_id, objects)
