"""Parser-level checks (no network): the corpus against parse_body alone, hashing that cannot
raise, the transport policy, and the timestamp window."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from connector.errors import MessageError
from connector.jsonguard import MAX_DEPTH, too_deep
from connector.payloads import Message, SourcePolicy, check_time, parse_body, stable_hash

from .corpus import TOPIC, corpus, envelope, envelope_cases, person, text


@pytest.mark.parametrize("case", corpus(), ids=lambda c: c.name)
def test_corpus_case_at_the_parser(case):
    if case.field is None:
        assert isinstance(parse_body(case.body), Message)
        return
    with pytest.raises(MessageError) as exc:
        parse_body(case.body)
    assert exc.value.field == case.field and case.field in exc.value.reason
    assert case.why.lower() in exc.value.reason.lower()


@pytest.mark.parametrize("case", envelope_cases(), ids=lambda c: c.name)
def test_envelope_case_at_the_parser(case):
    if case.field is None:
        assert parse_body(case.body, [TOPIC]).topic_arn == TOPIC
        return
    with pytest.raises(MessageError) as exc:
        parse_body(case.body, [TOPIC])
    assert exc.value.field == case.field, exc.value.reason


def test_invalid_utf8_is_refused_naming_the_byte():
    body = text(person(1)).encode("utf-8").replace(b"Jane", b"J\xffne")
    with pytest.raises(MessageError) as exc:
        parse_body(body)
    assert exc.value.field == "body" and "0xff" in exc.value.reason
    # The same bytes decoded leniently by some queue adapter (surrogateescape): refused, not crashed.
    with pytest.raises(MessageError) as exc:
        parse_body(body.decode("utf-8", "surrogateescape"))
    assert exc.value.field == "body" and "UTF-8" in exc.value.reason


def test_lone_surrogates_are_replaced_consistently_everywhere():
    msg = person(2, identifiers__company="Acme \ud83d", data__custom_fields={"k\udc00": ["\udbff"]})
    parsed = parse_body(json.dumps(msg))             # ensure_ascii: escaped, as SNS delivers them
    assert parsed.payload["identifiers"]["company"] == "Acme \ufffd"
    assert parsed.payload["data"]["custom_fields"] == {"k\ufffd": ["\ufffd"]}
    json.dumps(parsed.payload, ensure_ascii=False).encode("utf-8")


def test_stable_hash_is_safe_for_anything():
    assert stable_hash({"a": "\ud800"}) != stable_hash({"a": "\ufffd"})
    big = 10 ** 5000
    assert stable_hash({"n": big}) == stable_hash({"n": big}) != stable_hash({"n": big + 1})
    assert stable_hash({1: "x", "1": "y"})
    deep: list = []
    node = deep
    for _ in range(5000):
        node.append([])
        node = node[0]
    assert stable_hash(deep)
    cyclic: dict = {}
    cyclic["self"] = cyclic
    assert stable_hash(cyclic)
    assert stable_hash({"b": 1, "a": [1, 2]}) == stable_hash({"a": [1, 2], "b": 1})


def test_message_key_is_the_sns_message_id_plus_a_content_hash():
    a = parse_body(envelope(text(person(3)), message_id="mid-1"))
    b = parse_body(envelope(text(person(4)), message_id="mid-1"))
    again = parse_body(envelope(text(person(3)), message_id="mid-1"))
    assert a.message_key.startswith("mid-1:") and b.message_key.startswith("mid-1:")
    assert a.message_key != b.message_key and again.message_key == a.message_key
    raw = parse_body(text(person(3)))
    assert raw.message_key.startswith("sha256:") and len(raw.message_key) == 71


def test_source_policy():
    body_raw, body_env = text(person(5)), envelope(text(person(5)))
    for policy in (None, [], SourcePolicy()):
        assert parse_body(body_raw, policy) and parse_body(body_env, policy)
    assert parse_body(body_env, [TOPIC]).topic_arn == TOPIC
    with pytest.raises(MessageError):
        parse_body(body_raw, [TOPIC])
    assert parse_body(body_raw, SourcePolicy((TOPIC,), raw_delivery=True)).topic_arn is None
    with pytest.raises(MessageError):
        parse_body(envelope(text(person(5)), topic="arn:other"), SourcePolicy((TOPIC,), raw_delivery=True))


def test_timestamp_window():
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    assert check_time("2026-06-01T23:00:00Z", moment=True, now=now)
    with pytest.raises(ValueError, match="future"):
        check_time("2026-06-02T01:00:01Z", moment=True, now=now)
    assert check_time("2031-05-01T09:00:00+10:00", moment=False, now=now)   # an event five years out
    with pytest.raises(ValueError, match="2099"):
        check_time("2100-01-02T00:00:00Z", moment=False)
    with pytest.raises(ValueError, match="2000"):
        check_time("0001-01-01T00:00:00+14:00", moment=False)


def test_depth_scan_ignores_brackets_inside_strings():
    assert not too_deep(json.dumps({"a": "[" * 10_000}))
    assert too_deep("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    assert not too_deep("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    assert not too_deep(json.dumps({"a": 'x\\"[[[' * 20}))
