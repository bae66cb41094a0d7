"""Archived traffic for the import tests: lines as Amazon Data Firehose writes an SNS subscription
to S3 (one SNS notification envelope as JSON per line, "Formatting Amazon SNS notifications for
storage in Amazon S3 destinations"), or bare Jomablue messages as a local export holds them."""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any

from jbtest import sample

TOPIC = "arn:aws:sns:us-east-1:123456789012:jomablue-push"


def envelope(payload: dict[str, Any], timestamp: str) -> str:
    env = sample("sns_envelope_person")
    env.update(MessageId=str(uuid.uuid4()), TopicArn=TOPIC, Timestamp=timestamp,
               Message=json.dumps(payload, ensure_ascii=False),
               MessageAttributes={"resource_type": {"Type": "String", "Value": payload["resource_type"]}})
    return json.dumps(env, ensure_ascii=False)


def person(n: int, event: str = "acme/event/521", **changes: Any) -> dict[str, Any]:
    return sample("person", identifiers__id=f"acme/event_person/{n}", identifiers__email=f"p{n}@example.com",
                  context__event_id=event, **changes)


def event(event_id: str = "acme/event/521") -> dict[str, Any]:
    return sample("event", identifiers__id=event_id)


def blob(lines: list[str], gz: bool) -> bytes:
    data = ("\n".join(lines) + "\n").encode("utf-8")
    return gzip.compress(data) if gz else data
