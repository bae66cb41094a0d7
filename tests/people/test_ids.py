"""Record ids: 15 → 18 vectors (the case-safe suffix of the ID field type, SOAP API Developer Guide
"Field Types": https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/field_types.htm),
shapes and key prefixes."""

from __future__ import annotations

import pytest

from connector.salesforce.ids import looks_like_id, object_for, to18
from connector.sync.identity import sf_person_id


@pytest.mark.parametrize("id15, id18", [
    ("70130000001tcyI", "70130000001tcyIAAQ"),
    ("003G000001SUbc4", "003G000001SUbc4IAD"),
    ("00558000001N0Ke", "00558000001N0KeAAK"),
    ("a0D30000001n7Pi", "a0D30000001n7PiEAI"),    # the doc's trap: not EAC
])
def test_to18_vectors(id15, id18):
    assert to18(id15) == id18
    assert to18(id18) == id18
    assert looks_like_id(id15) and looks_like_id(id18)


@pytest.mark.parametrize("value, expected", [
    ("003G000001SUbc4", "Contact"),
    ("003G000001SUbc4IAD", "Contact"),
    ("00Q5g00000AbCdE", "Lead"),
    ("0015g00000AbCdE", "Account"),
    ("70130000001tcyI", "Campaign"),
    ("003G000001SUbc4IA5", None),           # checksum says the digit '4' is upper case: not an id
    ("003g000001subc4iad", "Contact"),      # case-folded 18-char id: the checksum restores it
    ("003G000001SUbc", None),               # 14 characters
    ("003G000001SUbc4I", None),             # 16 characters
    ("CRM-000000000042", None),
    ("", None),
    (None, None),
])
def test_object_for(value, expected):
    assert object_for(value) == expected


@pytest.mark.parametrize("uid, expected", [
    ("003G000001SUbc4", "003G000001SUbc4IAD"),      # Contact, 15 → 18
    ("003G000001SUbc4IAD", "003G000001SUbc4IAD"),
    ("00Q5g00000AbCdE", to18("00Q5g00000AbCdE")),   # Lead
    ("0015g00000AbCdE", None),                      # Account: not this rung
    ("70130000001tcyI", None),                      # Campaign
    ("003g000001sUBC4", to18("003g000001sUBC4")),   # another casing is another record
    ("jane@example.com", None),
    ("", None),
    (None, None),
])
def test_sf_person_id(uid, expected):
    assert sf_person_id(uid) == expected


@pytest.mark.parametrize("folded", ["003g000001subc4iad", "003G000001SUBC4IAD", "003G000001subc4IAD"])
def test_to18_repairs_case_folded_18_char_ids(folded):
    # Salesforce reads 18-char ids case-insensitively: the suffix encodes the case.
    assert to18(folded) == "003G000001SUbc4IAD"


def test_to18_rejects_non_ids():
    for bad in ("hello", "003G000001SUbc4IA5", "0035g00000XyZ1", "003G000001SUbc4I9D"):
        with pytest.raises(ValueError):
            to18(bad)
