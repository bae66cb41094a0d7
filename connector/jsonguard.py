"""Decoding untrusted JSON text so that no body can stop the pipeline.

Everything here runs BEFORE the business validation of :mod:`connector.payloads` and turns every
way a body can hurt the process into :class:`Refused` (which the parser turns into the message's
quarantine, naming the field):

* size: bounded in UTF-8 bytes before anything else looks at the text;
* nesting: a cheap scan of the bracket skeleton bounds the depth before ``json.loads`` runs, so
  neither the decoder (RecursionError at ~1,000 levels) nor pydantic's serialiser (255 levels)
  ever sees a deep document;
* numbers: an integer of more than :data:`MAX_INT_DIGITS` digits, a float that is not finite
  (``1e400``) and the non-JSON constants ``NaN``/``Infinity`` are refused, naming where they sit.
  Python refuses to build ints over 4,300 digits with a ValueError, and an infinite float would
  be written to Salesforce as ``Infinity``, which is not JSON;
* text: see :func:`clean_text`.
"""

from __future__ import annotations

import json
import math
import re
import threading
from itertools import accumulate
from typing import Any

MAX_DEPTH = 32             # a Jomablue message nests 4 deep (data.categories[].id); an envelope 3
MAX_INT_DIGITS = 20        # every 64-bit integer, signed or not; Salesforce numbers hold 18 digits
MAX_NUMBER_CHARS = 40      # the text of one float

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)   # a JSON string literal (unrolled loop)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_SURROGATE = re.compile("[\ud800-\udfff]")
# Characters XML 1.0 cannot carry (Salesforce's SOAP, Bulk XML and report exports) and NUL, which
# PostgreSQL text cannot hold: C0 controls other than tab, line feed and carriage return.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_BAD_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
# What in the JSON TEXT can decode to such a character: a \u escape of a surrogate or a C0
# control, the short escapes \b and \f, or a raw surrogate. Without one, the walk is skipped.
# (The pattern starts with a literal backslash, so the scan runs at memchr speed.)
_BAD_ESCAPE = re.compile(r"\\(?:u(?:[dD][89a-fA-F]|00[01])|[bf])")


class Refused(ValueError):
    """The text cannot be taken. `field` is the JSON path of the problem, or the name of the
    whole text ("body", "Message"); `reason` is the sentence for the operator, naming it."""

    def __init__(self, why: str, field: str, whole: bool = False) -> None:
        self.reason = f"{field} {why}" if whole else f"{field}: {why}"
        self.field = field
        super().__init__(self.reason)


class _Odd:
    """A number the decoder met but must not build; reported with its path by the walk."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why


def utf8_size(text: str) -> int:
    """Bytes the text takes in UTF-8 (lone surrogates count 3, as UTF-8 would have needed)."""
    return len(text.encode("utf-8", "surrogatepass"))


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON text nests arrays/objects deeper than `limit`, without decoding it.

    String literals are blanked first (brackets inside them do not nest), then only the brackets
    are kept and their running depth is summed in C. Cost: linear in the text, a few ms per MiB.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    skeleton = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if not skeleton:
        return False
    return max(accumulate(_STEP[c] for c in skeleton)) > limit


class _Numbers(threading.local):
    """The decoder's number hooks; `odd` says whether the last document needs the walk.

    One decoder serves every call (building a JSONDecoder per call costs more than decoding a
    small message); the flag is per thread, and reset before each document.
    """

    odd = False

    def int(self, text: str) -> Any:
        digits = len(text) - text.startswith("-")
        if digits > MAX_INT_DIGITS:
            self.odd = True
            return _Odd(f"an integer of {digits:,} digits (at most {MAX_INT_DIGITS} are accepted)")
        return int(text)

    def float(self, text: str) -> Any:
        if len(text) > MAX_NUMBER_CHARS:
            self.odd = True
            return _Odd(f"a number written with {len(text):,} characters (at most {MAX_NUMBER_CHARS})")
        value = float(text)
        if not math.isfinite(value):
            self.odd = True
            return _Odd(f"the number {text[:20]} is too large to represent")
        return value

    def constant(self, name: str) -> Any:
        self.odd = True
        return _Odd(f"{name} is not a JSON number")


_NUMBERS = _Numbers()
_DECODER = json.JSONDecoder(parse_int=_NUMBERS.int, parse_float=_NUMBERS.float, parse_constant=_NUMBERS.constant)


def loads(text: str, *, what: str, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """Decode bounded, untrusted JSON text; every odd number and text is checked or cleaned.

    `what` names the text in reasons ("body", "Message"). A leading byte-order mark is ignored
    (RFC 8259 §8.1 allows a parser to); everything else that is not plain JSON is refused.

    Raises:
        Refused: with the JSON path of the problem (or `what` for the text as a whole).
    """
    if len(text) * 4 > max_bytes and utf8_size(text) > max_bytes:
        raise Refused(f"is {utf8_size(text):,} bytes, more than the {max_bytes:,} accepted", what, whole=True)
    if text.startswith("\ufeff"):
        text = text[1:]
    if too_deep(text, max_depth):
        raise Refused(f"nests JSON more than {max_depth} levels deep", what, whole=True)
    _NUMBERS.odd = False
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise Refused(f"is not JSON ({exc.msg}: line {exc.lineno} column {exc.colno})", what, whole=True) from None
    except RecursionError:   # the scan makes this unreachable; kept so it can never escape
        raise Refused(f"nests JSON more than {max_depth} levels deep", what, whole=True) from None
    if not _NUMBERS.odd and not _BAD_ESCAPE.search(text) and (text.isascii() or not _SURROGATE.search(text)):
        return value          # the common case: nothing the walk could find (and it costs more than decoding)
    return clean_text(value, what)


def clean_text(value: Any, what: str = "body") -> Any:
    """Walk a decoded JSON value: refuse odd numbers (naming their path) and clean every text.

    Lone surrogates are REPLACED with U+FFFD, not refused. A JSON escape such as ``"\\ud83d"``
    decodes to half of a UTF-16 surrogate pair, which no UTF-8 encoder, SQLite, PostgreSQL or
    Salesforce request can carry. It comes from a producer that cut a string (a name clipped to
    190 characters in the middle of an emoji): the rest of the message is good, so the person is
    synced with U+FFFD where the broken character was, as any UTF-8 decoder does with bytes it
    cannot read, rather than held back for a cosmetic defect. Ids cannot be damaged unnoticed: a
    replaced character in an email or id fails that field's own check or Salesforce's.

    Control characters other than tab, line feed and carriage return are REMOVED: they never
    carry visible content, XML-based Salesforce APIs and exports cannot hold them and PostgreSQL
    text cannot hold NUL. Right-to-left text, SOQL metacharacters and every other character are
    kept as sent (SOQL values are escaped where queries are built).
    """
    return _walk(value, "", 0, what)


def _walk(value: Any, path: str, depth: int, what: str) -> Any:
    """Paths read like the mapping's: ``data.categories[0].id`` (`what` for the root itself)."""
    if isinstance(value, str):
        return _clean(value) if _BAD_TEXT.search(value) else value
    if isinstance(value, _Odd):
        raise Refused(value.why, path or what)
    if depth > MAX_DEPTH:      # only for values that did not come through loads()
        raise Refused(f"nests JSON more than {MAX_DEPTH} levels deep", path or what, whole=True)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            key = _clean(k) if _BAD_TEXT.search(k) else k
            out[key] = _walk(v, f"{path}.{_label(key)}" if path else _label(key), depth + 1, what)
        return out
    if isinstance(value, list):
        return [_walk(v, f"{path}[{i}]", depth + 1, what) for i, v in enumerate(value)]
    return value


def _clean(text: str) -> str:
    return _CONTROL.sub("", _SURROGATE.sub("\ufffd", text))


def _label(key: str) -> str:
    """A JSON key as it may appear in a field path of a log line: bounded, printable."""
    return key if len(key) <= 64 else key[:61] + "..."


def json_type(value: Any) -> str:
    """How a value reads in an error message: 'a number', 'null', 'an object'..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def excerpt(value: Any, limit: int = 80) -> str:
    """A bounded repr of an untrusted value for a reason or log line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
