"""Salesforce record ids: 15 → 18 character normalisation and key prefixes.

The 18-character form appends a checksum of the capitalisation of the 15-character id,
so ids can be compared case-insensitively (SOAP API Developer Guide, "Primitive Data Types", ID;
the suffix algorithm as in github.com/rtkfan/sfdc-ids). Every id the connector
stores or compares goes through :func:`to18` first.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TypeGuard

_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_SHAPE = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-5]{3})?$")

KEY_PREFIXES = {
    "00Q": "Lead",
    "003": "Contact",
    "001": "Account",
    "701": "Campaign",
    "00v": "CampaignMember",
    "01Y": "CampaignMemberStatus",
    "005": "User",
    "00T": "Task",
}


@lru_cache(maxsize=65536)
def suffix(id15: str) -> str:
    """The three checksum characters for a 15-character id."""
    out = []
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        out.append(_SUFFIX_ALPHABET[bits])
    return "".join(out)


@lru_cache(maxsize=65536)   # a batch asks about the same ids again and again
def _restore_case(id18: str) -> str | None:
    """The 15 characters in the case the checksum encodes (18-char ids survive case folding)."""
    chars = list(id18[:15])
    for chunk, code in enumerate(id18[15:].upper()):
        if code not in _SUFFIX_ALPHABET:
            return None
        bits = _SUFFIX_ALPHABET.index(code)
        for i in range(5):
            pos = chunk * 5 + i
            if bits & (1 << i):
                if not chars[pos].isalpha():
                    return None
                chars[pos] = chars[pos].upper()
            else:
                chars[pos] = chars[pos].lower()
    return "".join(chars)


def looks_like_id(value: str | None) -> TypeGuard[str]:
    """True when value has the shape of a 15- or 18-character Salesforce id (with a valid checksum)."""
    if not value or not _ID_SHAPE.match(value):
        return False
    if len(value) == 18:
        return _restore_case(value) is not None
    return True


def to18(value: str) -> str:
    """Normalise a 15- or 18-character id to its 18-character form.

    An 18-character id whose letters were case-folded by some system in between is repaired from
    its checksum (that is what the suffix is for). Raises ValueError for anything else.
    """
    if not looks_like_id(value):
        raise ValueError(f"not a Salesforce id: {value!r}")
    if len(value) == 18:
        id15 = _restore_case(value)
        assert id15 is not None
        return id15 + suffix(id15)
    return value + suffix(value)


def object_for(value: str | None) -> str | None:
    """The standard object an id belongs to, by key prefix; None when unknown or not an id."""
    if not looks_like_id(value):
        return None
    return KEY_PREFIXES.get(value[:3])
