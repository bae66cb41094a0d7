"""Named, pure field transforms referenced from the YAML (``transforms: [trim, {join: ";"}]``).

Each entry of :data:`REGISTRY` validates its argument once and returns a closure
``fn(value, msg, refs) -> value``. Text transforms apply item by item to lists.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .conditions import is_empty

Fn = Callable[[Any, Mapping[str, Any], Mapping[str, Any]], Any]
_NO_ARG = object()


class TransformError(ValueError):
    pass


@dataclass(frozen=True)
class CompileContext:
    """What a transform may need at compile time."""

    field_length: int | None  # the target field's length (sf_schema or describe), if known
    placeholder: str


@dataclass(frozen=True)
class TransformSpec:
    name: str
    arg: str  # "none" | "optional" | "required"
    produces: str | None  # output type for org checks: date, datetime, boolean, number, text; None = unchanged
    factory: Callable[[Any, CompileContext], Fn]


def _elementwise(f: Callable[[Any], Any]) -> Fn:
    def fn(value: Any, msg: Mapping[str, Any], refs: Mapping[str, Any]) -> Any:
        if isinstance(value, list):
            return [f(v) for v in value]
        return f(value)
    return fn


def _str_only(f: Callable[[str], Any]) -> Callable[[Any], Any]:
    return lambda v: f(v) if isinstance(v, str) else v


def _trim(arg: Any, ctx: CompileContext) -> Fn:
    return _elementwise(_str_only(str.strip))


def _lower(arg: Any, ctx: CompileContext) -> Fn:
    return _elementwise(_str_only(str.lower))


def _upper(arg: Any, ctx: CompileContext) -> Fn:
    return _elementwise(_str_only(str.upper))


def _truncate(arg: Any, ctx: CompileContext) -> Fn:
    if arg is _NO_ARG:
        length = ctx.field_length
    elif isinstance(arg, bool) or not isinstance(arg, int) or arg < 1:
        raise TransformError("truncate takes a positive whole number of characters")
    else:
        length = arg
    if length is None:
        return lambda value, msg, refs: value  # validation warns; nothing to cut to
    n = length
    # Python str indexes code points, so a slice never splits a surrogate pair or a UTF-8 sequence.
    return _elementwise(_str_only(lambda s: s[:n]))


def parse_timestamp(value: Any) -> datetime | None:
    """An aware UTC datetime from an ISO-8601 text (``Z`` or offset; naive means UTC), else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):   # year 1 or 9999 with an offset cannot move to UTC
        return None


def _zone(name: Any) -> ZoneInfo | None:
    if not isinstance(name, str) or not name.strip():
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _local_date(arg: Any, ctx: CompileContext) -> Fn:
    def fn(value: Any, msg: Mapping[str, Any], refs: Mapping[str, Any]) -> Any:
        ts = parse_timestamp(value)
        if ts is None:
            return None
        data = msg.get("data") if isinstance(msg, Mapping) else None
        tz = _zone(refs.get("event.timezone"))
        if tz is None and isinstance(data, Mapping):
            tz = _zone(data.get("timezone"))
        try:
            return ts.astimezone(tz or UTC).date().isoformat()
        except OverflowError:    # 9999-12-31 late in the day, moved east of UTC
            return None
    return fn


def _date(arg: Any, ctx: CompileContext) -> Fn:
    def one(value: Any) -> Any:
        ts = parse_timestamp(value)
        return ts.date().isoformat() if ts is not None else None
    return _elementwise(one)


def _datetime(arg: Any, ctx: CompileContext) -> Fn:
    def one(value: Any) -> Any:
        ts = parse_timestamp(value)
        if ts is None:
            return None
        return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"
    return _elementwise(one)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _join(arg: Any, ctx: CompileContext) -> Fn:
    sep = ";" if arg is _NO_ARG else arg
    if not isinstance(sep, str):
        raise TransformError("join takes a separator string, e.g. {join: \";\"}")

    def fn(value: Any, msg: Mapping[str, Any], refs: Mapping[str, Any]) -> Any:
        if isinstance(value, list):
            return sep.join(_as_text(v) for v in value if not is_empty(v))
        return value
    return fn


def _map_key(value: Any) -> tuple[str, Any]:
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return ("b", value.strip().lower() == "true")
    if isinstance(value, (int, float)):
        return ("s", _as_text(value))
    return ("s", value if isinstance(value, str) else _as_text(value))


def _map(arg: Any, ctx: CompileContext) -> Fn:
    if not isinstance(arg, Mapping) or not arg:
        raise TransformError("map takes a non-empty mapping of value: replacement")
    table = {_map_key(k): v for k, v in arg.items() if k != "_else"}
    has_else = "_else" in arg
    fallback = arg.get("_else")

    def one(value: Any) -> Any:
        if value is None:
            return None
        key = _map_key(value)
        if key in table:
            return table[key]
        return fallback if has_else else value
    return _elementwise(one)


def _default(arg: Any, ctx: CompileContext) -> Fn:
    if isinstance(arg, (dict, list)) or arg is _NO_ARG or arg is None:
        raise TransformError("default takes a constant (string, number or boolean)")
    return lambda value, msg, refs: arg if is_empty(value) else value


def _placeholder(arg: Any, ctx: CompileContext) -> Fn:
    text = ctx.placeholder
    return lambda value, msg, refs: text if is_empty(value) else value


def _json(arg: Any, ctx: CompileContext) -> Fn:
    def fn(value: Any, msg: Mapping[str, Any], refs: Mapping[str, Any]) -> Any:
        if is_empty(value):
            return None
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return fn


def _string(arg: Any, ctx: CompileContext) -> Fn:
    return _elementwise(lambda v: None if v is None else _as_text(v))


def _boolean(arg: Any, ctx: CompileContext) -> Fn:
    def one(value: Any) -> Any:
        if is_empty(value):
            return None
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in ("true", "1", "yes")
    return _elementwise(one)


def _number(arg: Any, ctx: CompileContext) -> Fn:
    def one(value: Any) -> Any:
        if isinstance(value, bool) or is_empty(value):
            return None
        if isinstance(value, int):
            return value
        try:
            f = value if isinstance(value, float) else float(str(value).strip())
        except ValueError:
            return None
        if not math.isfinite(f):   # "1e400", "nan": JSON cannot carry them to Salesforce
            return None
        return int(f) if f.is_integer() else f
    return _elementwise(one)


REGISTRY: dict[str, TransformSpec] = {
    spec.name: spec
    for spec in (
        TransformSpec("trim", "none", None, _trim),
        TransformSpec("lower", "none", None, _lower),
        TransformSpec("upper", "none", None, _upper),
        TransformSpec("truncate", "optional", None, _truncate),
        TransformSpec("local_date", "none", "date", _local_date),
        TransformSpec("date", "none", "date", _date),
        TransformSpec("datetime", "none", "datetime", _datetime),
        TransformSpec("join", "optional", "text", _join),
        TransformSpec("map", "required", None, _map),
        TransformSpec("default", "required", None, _default),
        TransformSpec("placeholder", "none", None, _placeholder),
        TransformSpec("json", "none", "text", _json),
        TransformSpec("string", "none", "text", _string),
        TransformSpec("boolean", "none", "boolean", _boolean),
        TransformSpec("number", "none", "number", _number),
    )
}

NO_ARG = _NO_ARG


def finalise(value: Any) -> Any:
    """Turn what a rule produced into something a Salesforce record can hold (or None = omit)."""
    if isinstance(value, list):
        value = ";".join(_as_text(v) for v in value if not is_empty(v))
    elif isinstance(value, dict):
        value = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")) if value else None
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = value.isoformat()
    if is_empty(value):
        return None
    return value
