"""Parsing at the boundary: SQS body → (SNS envelope or raw) → a validated Jomablue message.

Two layers, as AWS delivers them: the transport (an SNS notification envelope, or raw delivery
with the Jomablue JSON as the body) and the business payload. The documented core of each
resource type is required; everything else is optional and unknown keys are kept, because
Jomablue adds fields over time (jomablue-payloads.md). Past this module the pipeline works on
:class:`Message`: typed ids for routing plus the full payload dict for the mapping.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError, field_validator

from connector.errors import MessageError

KNOWN_TYPES = ("event", "person", "session_participation", "lead")


def _flex_bool(v: Any) -> Any:
    """Jomablue may send booleans as JSON booleans or as the strings "true"/"false"."""
    if isinstance(v, str):
        low = v.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no", ""):
            return False
    return v


def parse_utc(value: str) -> datetime:
    """Jomablue timestamps are UTC, shaped like 2025-07-02T19:15:12.511Z (offset optional)."""
    text = value.strip().replace("Z", "+00:00")
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def _nonblank(v: str) -> str:
    if not v.strip():
        raise ValueError("must not be empty")
    return v.strip()


NonBlank = Annotated[str, AfterValidator(_nonblank)]
FlexBool = Annotated[bool | None, BeforeValidator(_flex_bool)]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Ids(_Open):
    id: NonBlank


class _EventContext(_Open):
    event_id: str
    event_name: str | None = None
    event_metadata: dict[str, Any] | None = None


class _PersonContext(_EventContext):
    person_id: NonBlank


class _PersonData(_Open):
    cancelled: FlexBool = None
    checked_in: FlexBool = None


class _SessionData(_Open):
    attended: FlexBool = None


class _SessionIds(_Ids):
    session_id: str


class _Base(_Open):
    resource_type: str
    generated_at: datetime

    @field_validator("generated_at", mode="before")
    @classmethod
    def _utc(cls, v: Any) -> Any:
        return parse_utc(v) if isinstance(v, str) else v


class EventPayload(_Base):
    resource_type: Literal["event"]
    identifiers: _Ids
    data: _Open


class PersonPayload(_Base):
    resource_type: Literal["person"]
    context: _EventContext
    identifiers: _Ids
    data: _PersonData


class LeadPayload(_Base):
    resource_type: Literal["lead"]
    context: _PersonContext
    identifiers: _Ids
    data: _Open | None = None


class SessionPayload(_Base):
    resource_type: Literal["session_participation"]
    context: _PersonContext
    identifiers: _SessionIds
    data: _SessionData | None = None


_MODELS: dict[str, type[_Base]] = {
    "event": EventPayload,
    "person": PersonPayload,
    "lead": LeadPayload,
    "session_participation": SessionPayload,
}


@dataclass(frozen=True)
class Message:
    """One validated Jomablue message and where it came from."""

    message_key: str          # SNS MessageId, or a hash of the raw body (raw delivery)
    resource_type: str
    resource_id: str          # identifiers.id
    generated_at: datetime
    payload: dict[str, Any]   # the full JSON (booleans normalised), for the mapping
    event_id: str             # the event the message belongs to
    topic_arn: str | None = None

    @property
    def instance(self) -> str | None:
        return instance_of(self.resource_id)

    @property
    def resource_key(self) -> str:
        """What the state store keys a resource's last applied content by."""
        return f"{self.resource_type}:{self.resource_id}"

    @property
    def content_hash(self) -> str:
        """Hash of everything but generated_at: identical republished messages hash the same."""
        return stable_hash({k: v for k, v in self.payload.items() if k != "generated_at"})


@dataclass(frozen=True)
class Unrecognised:
    """A well-formed message of a resource type this connector does not handle."""

    message_key: str
    resource_type: str


def stable_hash(obj: Any) -> str:
    """sha256 of a JSON value with sorted keys: equal content, equal hash, whatever the key order."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def instance_of(jomablue_id: str | None) -> str | None:
    """`acme/event_person/51486` → `acme`; ids without slashes have no instance."""
    if not jomablue_id or "/" not in jomablue_id:
        return None
    return jomablue_id.split("/", 1)[0]


def _field_of(err: dict[str, Any]) -> str:
    return ".".join(str(p) for p in err["loc"])


def parse_body(body: str, allowed_topic_arns: list[str] | tuple[str, ...] = ()) -> Message | Unrecognised:
    """Parse an SQS body; raise MessageError (quarantine) with the field and reason when it is bad."""
    try:
        outer = json.loads(body)
    except (json.JSONDecodeError, TypeError) as exc:
        raise MessageError(f"body is not JSON ({exc.msg if hasattr(exc, 'msg') else exc})", field="body") from None
    if not isinstance(outer, dict):
        raise MessageError("body is JSON but not an object", field="body")
    topic = None
    if outer.get("Type") == "Notification" and "Message" in outer:
        topic = outer.get("TopicArn")
        if allowed_topic_arns and topic not in allowed_topic_arns:
            raise MessageError(f"SNS topic {topic!r} is not in sqs.allowed_topic_arns", field="TopicArn")
        key = str(outer.get("MessageId") or "")
        if not isinstance(outer["Message"], str):
            raise MessageError("SNS Message is not a string", field="Message")
        try:
            inner = json.loads(outer["Message"])
        except json.JSONDecodeError as exc:
            raise MessageError(f"SNS Message is not JSON ({exc.msg})", field="Message") from None
        if not key:
            key = "sha256:" + hashlib.sha256(outer["Message"].encode()).hexdigest()
    elif "Type" in outer and "resource_type" not in outer:
        raise MessageError(f"SNS {outer.get('Type')!r} envelope is not a Notification", field="Type")
    else:
        inner = outer
        key = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
    if not isinstance(inner, dict) or "resource_type" not in inner:
        raise MessageError("not a Jomablue message (no resource_type)", field="resource_type")
    rtype = inner["resource_type"]
    if not isinstance(rtype, str):
        raise MessageError("resource_type is not a string", field="resource_type")
    model = _MODELS.get(rtype)
    if model is None:
        return Unrecognised(key, rtype)
    try:
        parsed = model.model_validate(inner)
    except ValidationError as exc:
        err = exc.errors()[0]
        more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise MessageError(f"{_field_of(err)}: {err['msg']}{more}", field=_field_of(err)) from None
    payload = parsed.model_dump(mode="json")
    payload["generated_at"] = inner["generated_at"]
    ctx = payload.get("context") or {}
    event_id = payload["identifiers"]["id"] if rtype == "event" else ctx["event_id"]
    return Message(
        message_key=key,
        resource_type=rtype,
        resource_id=payload["identifiers"]["id"],
        generated_at=parsed.generated_at,
        payload=payload,
        event_id=event_id,
        topic_arn=topic,
    )
