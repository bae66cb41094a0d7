"""The one SOQL builder: every statement fits the URL (16,384 bytes) and SOQL (100,000 characters)
limits, values are escaped, and a value no statement can carry fails on its own."""

from __future__ import annotations

from urllib.parse import quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.salesforce.soql import MAX_ENCODED_QUERY, MAX_SOQL, ValueTooLong, pack_or
from connector.sync.members import adoption_queries


def test_long_in_lists_split_so_each_statement_fits_and_every_value_travels_once():
    ids = [f"00Q{n:015d}" for n in range(3000)]
    emails = [f"person.{n}+tag@example.com" for n in range(1500)]
    out = pack_or("SELECT Id FROM Lead WHERE ", [("Id", ids), ("Email", emails)])
    assert len(out) > 1
    for s in out:
        assert len(quote_plus(s)) <= MAX_ENCODED_QUERY and len(s) <= MAX_SOQL
    text = " ".join(out)
    assert all(text.count(f"'{i}'") == 1 for i in ids[:50] + ids[-50:])


def test_values_are_escaped():
    [s] = pack_or("SELECT Id FROM Lead WHERE ", [("Email", ["o'brien@example.com", "a\\b"])])
    assert "'o\\'brien@example.com'" in s and "'a\\\\b'" in s


def test_a_value_that_fits_no_statement_is_refused_alone():
    with pytest.raises(ValueTooLong) as err:
        pack_or("SELECT Id FROM Lead WHERE ", [("Email", ["x" * 100_000 + "@example.com"])])
    assert err.value.field == "Email"


def test_adoption_lists_each_person_once_even_for_hundreds_of_hand_made_members():
    pairs = [("701000000000001AAA", f"00Q{n:012d}AAA") for n in range(450)]
    out = adoption_queries(pairs)
    text = " ".join(out)
    assert all(text.count(p) == 1 for _, p in pairs)
    assert all(len(quote_plus(s)) <= MAX_ENCODED_QUERY for s in out)


@given(st.text())
def test_the_encoded_length_is_what_quote_plus_makes(text):
    from urllib.parse import quote_plus

    from connector.salesforce.soql import encoded_len

    try:
        expected = len(quote_plus(text))
    except UnicodeEncodeError:      # lone surrogates: quote_plus refuses them, the builder counts 3 bytes
        return
    assert encoded_len(text) == expected
