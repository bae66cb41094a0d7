"""The one SOQL builder: every statement fits the SOQL limit (100,000 characters) and holds at most
500 values an IN list, values are escaped, and a value no statement can carry fails on its own.
(A statement too long for a URL travels in a /composite body: tests/salesforce/test_long_queries*.)"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.salesforce.soql import MAX_IN_LIST, MAX_SOQL, ValueTooLong, pack_or
from connector.sync.members import adoption_queries


def test_long_in_lists_split_so_each_statement_fits_and_every_value_travels_once():
    ids = [f"00Q{n:015d}" for n in range(3000)]
    emails = [f"person.{n}+tag@example.com" for n in range(1500)]
    out = pack_or("SELECT Id FROM Lead WHERE ", [("Id", ids), ("Email", emails)])
    # 500 a list: six lists of ids, three of emails; the first three statements carry both
    # (ids and emails side by side, ~24,000 characters), the last three ids alone.
    assert len(out) == 6 and all("Email IN" in s for s in out[:3]) and not any("Email" in s for s in out[3:])
    for s in out:
        assert len(s) <= MAX_SOQL and all(n <= MAX_IN_LIST for n in in_list_sizes(s))
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
    assert all(len(s) <= MAX_SOQL and max(in_list_sizes(s)) <= MAX_IN_LIST for s in out)


def test_long_values_split_on_the_statement_length():
    emails = [f"{'x' * 3_000}.{n}@example.com" for n in range(70)]   # ~3,000 characters each
    out = pack_or("SELECT Id FROM Lead WHERE ", [("Email", emails)])
    assert len(out) == 3 and all(len(s) <= MAX_SOQL for s in out)
    assert sum(s.count("@example.com") for s in out) == 70


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60),
                max_size=1_200))
def test_every_value_travels_once_in_statements_within_the_limits(values):
    out = pack_or("SELECT Id FROM Lead WHERE ", [("Email", values)])
    assert all(len(s) <= MAX_SOQL and max(in_list_sizes(s)) <= MAX_IN_LIST for s in out)
    assert sum(in_list_sizes(" ".join(out))) == len(set(values))


def in_list_sizes(statement: str) -> list[int]:
    """Values per IN list, counted from the quoted literals (an escaped quote is not one)."""
    return [len(re.findall(r"'(?:[^'\\]|\\.)*'", part))
            for part in re.findall(r" IN \(((?:'(?:[^'\\]|\\.)*'(?:, )?)*)\)", statement)]
