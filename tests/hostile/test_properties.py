"""Property tests: generated bodies (valid-ish payloads with one part mutated, and arbitrary text)
are quarantined, skipped or synced by the real engine, and nothing ever raises.

Profiles: `hostile-ci` (the default) is derandomized and small, so CI runs the same examples every
time and quickly; HOSTILE_PROFILE=hostile-dev explores many more random examples locally.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.errors import MessageError
from connector.payloads import Message, Unrecognised, parse_body

from .corpus import SAMPLES, TOPIC, envelope

_COMMON = dict(deadline=None, database=None, print_blob=True,
               suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                      HealthCheck.data_too_large])
settings.register_profile("hostile-ci", derandomize=True, max_examples=25, **_COMMON)
settings.register_profile("hostile-dev", max_examples=300, **_COMMON)
PROFILE = os.environ.get("HOSTILE_PROFILE", "hostile-ci")
ENGINE = settings(settings.get_profile(PROFILE))
PARSER = settings(settings.get_profile(PROFILE), max_examples=settings.get_profile(PROFILE).max_examples * 10)

ODD_TEXT = ["", "  ", "\ud800", "a\udfffb", "\x00", "\u202eevil", "0001-01-01T00:00:00+05:00",
            "9999-12-31T23:59:59-05:00", "2025-09-10T23:04:51.127Z", "'; DELETE FROM Lead --", "\\'", "%_",
            "acme/event_person/48213", "true", "null", "😀" * 3, "x" * 300]
ODD_RAW = ["9" * 5000, "1e400", "NaN", "-Infinity", "[" * 200 + "]" * 200, '{"a":' * 40 + "1" + "}" * 40]

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(max_size=12) | st.sampled_from(ODD_TEXT))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


KINDS = ["person", "event", "lead", "session_participation"]
PATHS = {k: _paths(SAMPLES[k]) for k in KINDS}


@st.composite
def bodies(draw: Any) -> str:
    """One SQS body: a sample with one mutation, as text (raw or in an envelope), sometimes cut."""
    kind = draw(st.sampled_from(KINDS))
    msg = copy.deepcopy(SAMPLES[kind])
    n = draw(st.integers(0, 50))
    if kind == "person":
        msg["identifiers"].update(id=f"acme/event_person/p{n}", email=f"p{n}@example.com", organisation_uid="")
    path = draw(st.sampled_from(PATHS[kind]))
    parent = msg
    for p in path[:-1]:
        parent = parent[p]
    action = draw(st.sampled_from(["set", "set", "delete", "raw", "none"]))
    hole = None
    if action == "set":
        parent[path[-1]] = draw(json_values)
    elif action == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    elif action == "raw":
        parent[path[-1]] = "__RAW__"
        hole = draw(st.sampled_from(ODD_RAW))
    text = json.dumps(msg, ensure_ascii=False)
    if any("\ud800" <= c <= "\udfff" for c in text):
        # SQS carries only valid Unicode: a lone surrogate can only arrive JSON-escaped.
        text = json.dumps(msg)
    if hole is not None:
        text = text.replace('"__RAW__"', hole)
    if draw(st.integers(0, 9)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    if draw(st.booleans()):
        text = envelope(text, message_id=f"prop-{draw(st.integers(0, 10**6))}")
    return text


@PARSER
@given(st.one_of(bodies(), st.text(max_size=200), st.binary(max_size=200),
                 json_values.map(lambda v: json.dumps(v, ensure_ascii=False))))
def test_the_parser_raises_nothing_but_message_error(body):
    try:
        parsed = parse_body(body, [TOPIC] if isinstance(body, str) and "Notification" in body else None)
    except MessageError as exc:
        assert exc.field and exc.reason
        assert len(exc.reason) < 600
        return
    assert isinstance(parsed, (Message, Unrecognised))
    if isinstance(parsed, Message):
        # What passed can be hashed, stored as UTF-8 and sent as strict JSON.
        assert parsed.content_hash
        json.dumps(parsed.payload, allow_nan=False, ensure_ascii=False).encode("utf-8")


@ENGINE
@given(st.lists(bodies(), min_size=1, max_size=6))
def test_the_engine_quarantines_skips_or_syncs_every_body_and_never_raises(engine_once, batch):
    outcomes = engine_once.run(json.dumps(SAMPLES["event"]), *batch)
    assert outcomes[0].status in ("synced", "skipped")
    for body, o in zip(batch, outcomes[1:], strict=True):
        assert o.status in ("synced", "skipped", "quarantined"), (body[:300], o)
        if o.status == "quarantined":
            assert o.reason and o.message_key, o
