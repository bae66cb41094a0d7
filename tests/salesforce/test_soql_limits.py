"""The SOQL WHERE-clause string limit (4,000 characters a string; App Limits cheatsheet): a value
past it fails its own message with a one-line reason, never the batch's query."""

from __future__ import annotations

import pytest

from connector.salesforce.soql import MAX_WHERE_STRING, ValueTooLong, fits, pack_or

HEAD = "SELECT Id FROM Lead WHERE "


def test_a_string_of_4000_characters_travels():
    value = "x" * (MAX_WHERE_STRING - len("@example.com")) + "@example.com"
    assert len(value) == 4_000 and fits(value)
    [statement] = pack_or(HEAD, [("Email", [value, "kim@example.com"])])
    assert value in statement and "kim@example.com" in statement


def test_a_string_of_4001_characters_fails_alone_naming_the_limit():
    value = "y" * 4_001
    assert not fits(value)
    with pytest.raises(ValueTooLong, match="WHERE string holds at most 4,000 characters") as err:
        pack_or(HEAD, [("Email", ["kim@example.com", value])])
    assert err.value.field == "Email" and err.value.value == value


def test_escaping_counts_against_the_limit():
    # 3,999 characters, two of them quotes that travel escaped (\'): 4,001 in the statement.
    value = "o'b'" + "c" * 3_995
    assert len(value) == 3_999 and not fits(value)
    assert fits(value[:-1])
