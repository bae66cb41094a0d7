"""A corpus of hostile queue bodies, each with what must become of it.

Every case is one SQS body (text, as SQS delivers it) built around a person message with its own
registration id and email, so the cases can share a batch with valid messages without meeting in
the identity ladder. `field` is the field the quarantine must name; None means the body is odd
but acceptable and must sync (`check` then says what must land in Salesforce).

Cases come from issue 11 (each crashed `connector run` or slipped through before) plus the usual
suspects: truncated JSON, byte-order marks, non-object JSON, 1 MiB bodies, nulls and numbers where
text belongs, control characters, SOQL metacharacters and right-to-left text.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

SAMPLES = json.loads((Path(__file__).parent.parent / "fixtures" / "jomablue-samples.json").read_text(encoding="utf-8"))
TOPIC = "arn:aws:sns:us-east-1:123456789012:jomablue-hostile"
MARK = '"__HOLE__"'    # replaced in the JSON text, for values json.dumps cannot write


@dataclass(frozen=True)
class Case:
    name: str
    body: str
    field: str | None                # the field the quarantine names; None: must sync
    why: str = ""                    # a word the reason must contain
    jid: str = ""                    # the registration id (for the cases that sync)
    check: Callable[[dict[str, Any]], bool] | None = None   # on the Lead that landed


def person(n: int, **changes: Any) -> dict[str, Any]:
    """Sample person n: its own registration id and email; `changes` are dotted paths (a__b)."""
    msg = copy.deepcopy(SAMPLES["person"])
    msg["identifiers"].update(id=f"acme/event_person/h{n}", email=f"h{n}@example.com", organisation_uid="")
    for path, value in changes.items():
        node = msg
        *parents, last = path.split("__")
        for p in parents:
            node = node[p]
        node[last] = value
    return msg


def text(msg: dict[str, Any], hole: str | None = None) -> str:
    """The JSON text of a message; MARK replaced by `hole` (raw JSON text)."""
    body = json.dumps(msg, ensure_ascii=False)
    return body.replace(MARK, hole) if hole is not None else body


def envelope(inner: str, *, topic: str = TOPIC, message_id: str = "3f1c2a9e-0000-4000-8000-000000000001",
             **extra: Any) -> str:
    """The SNS notification envelope SNS would put around `inner` (JSON-escaped)."""
    return json.dumps({"Type": "Notification", "MessageId": message_id, "TopicArn": topic, "Message": inner,
                       "Timestamp": "2025-09-10T23:04:52.000Z", "SignatureVersion": "1", "Signature": "x",
                       **extra})


def _future(days: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _hole(n: int, path: str) -> dict[str, Any]:
    return person(n, **{path: "__HOLE__"})


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def _exactly(size: int, msg: dict[str, Any]) -> str:
    """The message's JSON text grown to exactly `size` UTF-8 bytes with an ASCII job title."""
    msg = copy.deepcopy(msg)
    msg["data"]["job_title"] = ""
    pad = size - len(text(msg).encode("utf-8"))
    msg["data"]["job_title"] = "x" * pad
    body = text(msg)
    assert len(body.encode("utf-8")) == size
    return body


def corpus() -> list[Case]:
    """Every case once; raw bodies (no envelope) unless the name says envelope."""
    cases = [
        # -- the ones that stopped every run (issue 11) --------------------------------------
        Case("nested 10,000 deep", text(_hole(1, "data__custom_fields"), _deep(10_000)), "body", "nests"),
        Case("nested 300 deep inside data", text(_hole(2, "data__custom_fields"), '{"a":' * 300 + "1" + "}" * 300),
             "body", "nests"),
        Case("nested 33 deep (one past the bound)", text(_hole(3, "data__custom_fields"), _deep(31)), "body", "nests"),
        Case("integer of 5,000 digits", text(_hole(4, "data__custom_fields__seats"), "9" * 5000),
             "data.custom_fields.seats", "digits"),
        Case("integer of 21 digits", text(_hole(5, "data__custom_fields__seats"), "1" * 21),
             "data.custom_fields.seats", "digits"),
        Case("float 1e400", text(_hole(6, "data__custom_fields__score"), "1e400"), "data.custom_fields.score", "large"),
        Case("NaN constant", text(_hole(7, "data__custom_fields__score"), "NaN"), "data.custom_fields.score", "NaN"),
        Case("-Infinity constant", text(_hole(8, "data__custom_fields__score"), "-Infinity"),
             "data.custom_fields.score", "Infinity"),
        Case("generated_at year 1 with offset", text(person(9, generated_at="0001-01-01T00:00:00+05:00")),
             "generated_at", "2000"),
        Case("generated_at year 9999 with offset", text(person(10, generated_at="9999-12-31T23:59:59-05:00")),
             "generated_at", "future"),
        Case("generated_at year 9999", text(person(11, generated_at="9999-01-01T00:00:00.000Z")), "generated_at",
             "future"),
        Case("generated_at two days ahead", text(person(12, generated_at=_future(2))), "generated_at", "future"),
        Case("generated_at 1999", text(person(13, generated_at="1999-12-31T23:59:59.000Z")), "generated_at", "2000"),
        Case("generated_at a number", text(person(14, generated_at=1757545491)), "generated_at", "number"),
        Case("generated_at not a timestamp", text(person(15, generated_at="yesterday")), "generated_at", "ISO-8601"),
        Case("check-in year 1 with offset", text(person(16, data__first_check_in="0001-01-01T00:00:00+14:00")),
             "data.first_check_in", "2000"),
        Case("check-in year 9999 with offset", text(person(17, data__first_check_in="9999-12-31T23:00:00-12:00")),
             "data.first_check_in", "future"),
        Case("check-in a boolean", text(person(18, data__first_check_in=True)), "data.first_check_in", "boolean"),
        Case("categories a number", text(person(19, data__categories=5)), "data.categories", "number"),
        Case("categories a boolean", text(person(20, data__categories=True)), "data.categories", "boolean"),
        Case("categories text", text(person(21, data__categories="acme/category/7")), "data.categories", "text"),
        Case("categories an object", text(person(22, data__categories={"id": "acme/category/7"})),
             "data.categories", "object"),
        Case("category item a number", text(person(23, data__categories=[7])), "data.categories[0]", "data.categories"),
        Case("category without id", text(person(24, data__categories=[{"name": "VIP"}])), "data.categories[0].id",
             "required"),
        # -- nulls and numbers where text belongs -----------------------------------------------
        Case("event_id null", text(person(25, context__event_id=None)), "context.event_id", "null"),
        Case("registration id a number", text(person(26, identifiers__id=48213)), "identifiers.id", "number"),
        Case("registration id blank", text(person(27, identifiers__id="  ")), "identifiers.id", "empty"),
        Case("email a number", text(person(28, identifiers__email=42)), "identifiers.email", "number"),
        Case("first name an object", text(person(29, identifiers__first_name={"given": "Jane"})),
             "identifiers.first_name", "object"),
        Case("last name a list", text(person(30, identifiers__last_name=["Doe"])), "identifiers.last_name", "list"),
        Case("job title a number", text(person(31, data__job_title=7)), "data.job_title", "number"),
        Case("event metadata a list", text(person(32, context__event_metadata=["APAC"])),
             "context.event_metadata", "list"),
        Case("cancelled 'maybe'", text(person(33, data__cancelled="maybe")), "data.cancelled", "data.cancelled"),
        Case("data a string", text(person(34, data="checked in")), "data", "data"),
        Case("resource_type a number", text(person(35, resource_type=7)), "resource_type", "number"),
        Case("no resource_type", json.dumps({"hello": "world"}), "resource_type", "resource_type"),
        # -- sizes ----------------------------------------------------------------------------
        Case("100 KB email", text(person(36, identifiers__email="a" * 100_000 + "@example.com")),
             "identifiers.email", "characters"),
        Case("100 KB registration id", text(person(37, identifiers__id="acme/event_person/" + "9" * 100_000)),
             "identifiers.id", "characters"),
        Case("100 KB organisation_uid", text(person(38, identifiers__organisation_uid="0" * 100_000)),
             "identifiers.organisation_uid", "characters"),
        Case("1 MiB body", _exactly(1 << 20, person(39)), "body", "bytes"),
        Case("body over 1 MiB", text(person(40, data__job_title="é" * (1 << 20))), "body", "bytes"),
        Case("300 KB message", text(person(41, data__job_title="x" * 300_000)), "body", "bytes"),
        # -- not JSON, not an object -------------------------------------------------------------
        Case("truncated JSON", text(person(42))[:-17], "body", "not JSON"),
        Case("empty body", "", "body", "not JSON"),
        Case("raw control character in a string", text(person(43)).replace("Jane", "Ja\x01ne"), "body", "not JSON"),
        Case("JSON list", "[1, 2, 3]", "body", "not an object"),
        Case("JSON text", '"person"', "body", "not an object"),
        Case("JSON number of 5,000 digits", "7" * 5000, "body", "digits"),
        Case("JSON null", "null", "body", "not an object"),
        Case("two BOMs", "\ufeff\ufeff" + text(person(44)), "body", "not JSON"),
        # -- odd but acceptable: kept, cleaned or ignored, and synced ---------------------------
        Case("byte-order mark", "\ufeff" + text(person(60)), None, jid="acme/event_person/h60"),
        Case("lone surrogate in a name", text(person(61), None).replace('"Jane"', '"Jane\\ud83d"'), None,
             jid="acme/event_person/h61", check=lambda lead: lead["FirstName"] == "Jane\ufffd"),
        Case("escaped control characters", text(person(62)).replace('"Jane"', '"\\u0000Ja\\u0007ne\\t"'), None,
             jid="acme/event_person/h62", check=lambda lead: lead["FirstName"] == "Jane"),
        Case("right-to-left text", text(person(63, identifiers__first_name="\u202eمريم",
                                            identifiers__last_name="כהן")),
             None, jid="acme/event_person/h63",
             check=lambda lead: lead["FirstName"] == "\u202eمريم" and lead["LastName"] == "כהן"),
        Case("SOQL metacharacters", text(person(64, identifiers__email="o'brien_%+x@example.com",
                                               identifiers__last_name="O'Brien\\' OR Name LIKE '%")),
             None, jid="acme/event_person/h64",
             check=lambda lead: lead["LastName"] == "O'Brien\\' OR Name LIKE '%"),
        Case("nulls where text may be empty", text(person(65, identifiers__phone=None, identifiers__company=None,
                                                          data__job_title=None, data__first_check_in="")),
             None, jid="acme/event_person/h65"),
        Case("emoji, Korean and Thai", text(person(66, identifiers__first_name="김민준 😀",
                                                   identifiers__last_name="สมชาย")),
             None, jid="acme/event_person/h66", check=lambda lead: lead["FirstName"] == "김민준 😀"),
        Case("nested 30 deep in custom fields", text(_hole(67, "data__custom_fields__x"), _deep(28)), None,
             jid="acme/event_person/h67"),
        Case("integer of 20 digits", text(_hole(68, "data__custom_fields__seats"), "9" * 20), None,
             jid="acme/event_person/h68"),
    ]
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases


def envelope_cases() -> list[Case]:
    """Transport cases for a connector with sqs.allowed_topic_arns = [TOPIC] and raw_delivery false."""
    good = text(person(80))
    return [
        Case("envelope from the allowed topic", envelope(text(person(81))), None, jid="acme/event_person/h81"),
        Case("raw body with an allow-list", good, "Type", "raw_delivery"),
        Case("envelope Type 'notification'", envelope(text(person(82)), Type="notification"), "Type", "Notification"),
        Case("envelope Type SubscriptionConfirmation", envelope(text(person(83)), Type="SubscriptionConfirmation"),
             "Type", "Notification"),
        Case("envelope without Type", json.dumps({"MessageId": "m-84", "TopicArn": TOPIC, "Message": text(person(84))}),
             "Type", "Notification"),
        Case("envelope from another topic", envelope(text(person(85)), topic=TOPIC + "-other"), "TopicArn",
             "allowed_topic_arns"),
        Case("envelope TopicArn a list", envelope(text(person(86)), topic=[TOPIC]), "TopicArn", "list"),
        Case("envelope Message an object", json.dumps({"Type": "Notification", "MessageId": "m-87", "TopicArn": TOPIC,
                                                       "Message": person(87)}), "Message", "object"),
        Case("envelope Message nested 10,000 deep", envelope(_deep(10_000), message_id="m-88"), "Message", "nests"),
        Case("envelope Message truncated", envelope(text(person(89))[:-5], message_id="m-89"), "Message", "not JSON"),
        Case("envelope MessageId of 10 KB", envelope(text(person(90)), message_id="m" * 10_000), "MessageId",
             "MessageId"),
        Case("envelope with an odd Jomablue body",
             envelope(text(person(91, data__categories=False)), message_id="m-91"), "data.categories", "boolean"),
    ]


def same_message_id_pair() -> tuple[str, str]:
    """Two different bodies under one SNS MessageId: the first syncs, the second is bad."""
    mid = "3f1c2a9e-0000-4000-8000-00000000dupe"
    return (envelope(text(person(95)), message_id=mid),
            envelope(text(person(96, data__categories=7)), message_id=mid))
