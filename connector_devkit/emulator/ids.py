"""Record ids as Salesforce reads them: 15 or 18 characters, the 18-character form canonical."""

from __future__ import annotations

from typing import Any

from connector.salesforce.ids import looks_like_id, suffix, to18


def normalise_id(value: Any) -> str | None:
    """15 or 18 chars → canonical 18, repairing the case of an 18-char id from its checksum.

    The 15-character id is case-sensitive, the 18-character one is not: its last three characters
    encode the case of the first 15 (Salesforce Help, record ID knowledge article on 15- and
    18-character ids; Apex Developer Guide, Id class ``to15``/``valueOf``). That the API takes an
    18-character id in any case is inferred from that design, not recorded."""
    if not isinstance(value, str) or len(value) not in (15, 18) or not value.isalnum():
        return None
    if len(value) == 15:
        return to18(value)
    body, check = value[:15], value[15:].upper()
    if suffix(body) == check:
        return body + check
    fixed = []
    for chunk in range(3):
        bits = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345".find(check[chunk])
        if bits < 0:
            return None
        for i, ch in enumerate(body[chunk * 5 : chunk * 5 + 5]):
            fixed.append(ch.upper() if bits >> i & 1 else ch.lower())
    repaired = "".join(fixed)
    return repaired + check if looks_like_id(repaired + check) else None
