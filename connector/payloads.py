"""Parsing at the boundary: SQS body → (SNS envelope or raw) → a validated Jomablue message.

Two layers, as AWS delivers them: the transport (an SNS notification envelope, or raw delivery
with the Jomablue JSON as the body) and the business payload. The documented core of each
resource type is required; everything else is optional and unknown keys are kept, because
Jomablue adds fields over time (Jomablue's "Push API integration guidance"). Past this module the
pipeline works on :class:`Message`: typed ids for routing plus the full payload dict for the mapping.

Isolation: :func:`parse_body` raises nothing but MessageError, whatever the body. Size and nesting
are bounded before the JSON is decoded (:mod:`connector.jsonguard`), odd numbers are refused and
text is cleaned while decoding, documented text fields must be text (or null), categories a list
of objects with ids, and timestamps must be plausible (:func:`check_time`). So a payload that
passes can be hashed, stored and serialised to Salesforce without any stage meeting a value
that raises.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError, field_validator
from pydantic_core import ErrorDetails

from connector.errors import MessageError
from connector.jsonguard import Refused, excerpt, json_type, loads, utf8_size

MAX_BODY_BYTES = 1_048_576     # the largest body SQS delivers
MAX_MESSAGE_BYTES = 262_144    # the largest message SNS publishes: no genuine Jomablue message is larger
MAX_ID_CHARS = 255             # ids are short tokens (`acme/event_person/51486`); longer is not an id
MAX_EMAIL_CHARS = 254          # the longest address SMTP can carry (RFC 5321 §4.5.3.1)
MAX_MESSAGE_ID_CHARS = 128     # SNS MessageIds are 36-character UUIDs
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)   # before Jomablue existed: a broken clock or field
FUTURE_SLACK = timedelta(days=1)                        # clocks drift; a day ahead is not a clock, it is a bug
SCHEDULE_END = datetime(2100, 1, 1, tzinfo=timezone.utc)   # event and session times may lie ahead, not this far


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
    """Jomablue timestamps are UTC, shaped like 2025-07-02T19:15:12.511Z (offset optional).

    Raises:
        ValueError: not an ISO-8601 timestamp, or one that cannot be moved to UTC (year 1 with a
            positive offset, year 9999 with a negative one overflow: OverflowError becomes this).
    """
    text = value.strip().replace("Z", "+00:00")
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    try:
        return dt.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(f"{value!r} is outside the range of dates") from None


def check_time(value: Any, *, moment: bool, now: datetime | None = None) -> datetime:
    """A timestamp of a message, within the plausible window; ValueError with the reason otherwise.

    `moment`: something that happened (generated_at, a check-in, a capture): between 2000-01-01 and
    a day after now. Otherwise a schedule (an event's or session's start or end): 2000 to 2099.
    A timestamp from year 9999 would make every later real update of its resource look stale.
    """
    if not isinstance(value, str):
        raise ValueError(f"must be an ISO-8601 timestamp text, not {json_type(value)}")
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{excerpt(value, 40)} is not an ISO-8601 timestamp") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    try:
        dt = dt.astimezone(timezone.utc)
    except OverflowError:       # year 1 or 9999 with an offset: no UTC time exists for it
        dt = EARLIEST - FUTURE_SLACK if dt.year < 2000 else datetime.max.replace(tzinfo=timezone.utc)
    latest = (now or datetime.now(timezone.utc)) + FUTURE_SLACK if moment else SCHEDULE_END
    if dt < EARLIEST:
        raise ValueError(f"{excerpt(value, 40)} is before 2000-01-01")
    if dt > latest:
        raise ValueError(f"{excerpt(value, 40)} is " + ("more than a day in the future" if moment else "after 2099"))
    return dt


def _is_moment_key(key: str) -> bool:
    return key.endswith("_at") or "check_in" in key or "check_out" in key


def _is_time_key(key: str) -> bool:
    return key.endswith(("_at", "_time")) or "check_" in key and _is_moment_key(key)


def _text(v: Any) -> Any:
    """Free text that may be empty: text or null; a number, boolean, list or object is refused."""
    if v is None or isinstance(v, str):
        return v
    raise ValueError(f"must be text, not {json_type(v)}")


def _bounded(limit: int) -> Any:
    def check(v: str | None) -> str | None:
        if v is not None and len(v) > limit:
            raise ValueError(f"is {len(v):,} characters long, more than the {limit} accepted")
        return v
    return check


def _id(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"must be an id (text), not {json_type(v)}")
    text = v.strip()
    if not text:
        raise ValueError("must not be empty")
    if len(text) > MAX_ID_CHARS:
        raise ValueError(f"is {len(text):,} characters long, more than the {MAX_ID_CHARS} an id may have")
    return text


def _object(v: Any) -> Any:
    if v is None or isinstance(v, dict):
        return v
    raise ValueError(f"must be an object of keys and values, not {json_type(v)}")


def _list(v: Any) -> Any:
    if v is None or isinstance(v, list):
        return v
    raise ValueError(f"must be a list, not {json_type(v)}")


Id = Annotated[str, BeforeValidator(_id)]
Text = Annotated[str | None, BeforeValidator(_text)]
Uid = Annotated[str | None, BeforeValidator(_text), AfterValidator(_bounded(MAX_ID_CHARS))]
Email = Annotated[str | None, BeforeValidator(_text), AfterValidator(_bounded(MAX_EMAIL_CHARS))]
Obj = Annotated[dict[str, Any] | None, BeforeValidator(_object)]
FlexBool = Annotated[bool | None, BeforeValidator(_flex_bool)]


class _Open(BaseModel):
    """Documented keys are typed; unknown keys are kept for the mapping (Jomablue adds fields)."""

    model_config = ConfigDict(extra="allow")


class _Category(_Open):
    id: Id
    name: Text = None


Categories = Annotated[list[_Category] | None, BeforeValidator(_list)]


class _Ids(_Open):
    id: Id


class _EventContext(_Open):
    event_id: Id
    event_name: Text = None
    event_metadata: Obj = None


class _PersonContext(_EventContext):
    person_id: Id
    person_first_name: Text = None
    person_last_name: Text = None
    person_email: Email = None
    person_phone: Text = None
    person_company: Text = None
    person_organisation_uid: Uid = None


class _PersonIds(_Ids):
    first_name: Text = None
    last_name: Text = None
    email: Email = None
    phone: Text = None
    company: Text = None
    organisation_uid: Uid = None


class _EventData(_Open):
    name: Text = None
    short_description: Text = None
    description: Text = None
    venue_name: Text = None
    venue_address: Text = None
    timezone: Text = None
    metadata: Obj = None
    categories: Categories = None


class _PersonData(_Open):
    cancelled: FlexBool = None
    checked_in: FlexBool = None
    job_title: Text = None
    categories: Categories = None
    custom_fields: Obj = None


class _LeadIds(_Ids):
    vendor_id: Text = None
    vendor_organisation_uid: Uid = None


class _LeadData(_Open):
    vendor_name: Text = None
    notes: Text = None


class _SessionIds(_Ids):
    session_id: Id
    session_organisation_uid: Uid = None


class _SessionData(_Open):
    attended: FlexBool = None
    session_name: Text = None
    session_code: Text = None


class _Base(_Open):
    resource_type: str
    generated_at: datetime

    @field_validator("generated_at", mode="before")
    @classmethod
    def _utc(cls, v: Any) -> Any:
        return check_time(v, moment=True)


class EventPayload(_Base):
    resource_type: Literal["event"]
    identifiers: _Ids
    data: _EventData


class PersonPayload(_Base):
    resource_type: Literal["person"]
    context: _EventContext
    identifiers: _PersonIds
    data: _PersonData


class LeadPayload(_Base):
    resource_type: Literal["lead"]
    context: _PersonContext
    identifiers: _LeadIds
    data: _LeadData | None = None


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
class SourcePolicy:
    """Which transport forms are accepted (the operator contract, README: "The queue's trust
    boundary", `sqs.allowed_topic_arns` and `sqs.raw_delivery`).

    No allow-list: SNS notification envelopes and raw bodies alike. With an allow-list: SNS
    notification envelopes (``Type`` exactly ``Notification``) whose ``TopicArn`` is listed, and
    bodies without an envelope only when ``raw_delivery`` says the subscription delivers raw.
    The connector does not verify SNS signatures: whatever can send to the queue can write any
    envelope, so the queue's access policy (only the Jomablue topic may ``sqs:SendMessage``) is the
    boundary, and the allow-list guards against a wrong subscription, not against an attacker who
    may write to the queue.
    """

    allowed_topic_arns: tuple[str, ...] = ()
    raw_delivery: bool = False

    @classmethod
    def of(cls, spec: SourcePolicy | Sequence[str] | None) -> SourcePolicy:
        """A policy from itself, a bare allow-list (raw bodies refused when it is set) or None."""
        if isinstance(spec, SourcePolicy):
            return spec
        return cls(tuple(spec)) if spec else _ANY_SOURCE


_ANY_SOURCE = SourcePolicy()


@dataclass(frozen=True)
class Message:
    """One validated Jomablue message and where it came from."""

    # `<SNS MessageId>:<16 hex of sha256(Message)>`, or `sha256:<hex>` of a raw body. The content
    # is part of the key: SNS keeps a MessageId across redeliveries of the SAME message, so two
    # different bodies under one MessageId are two messages, each with its own outcome row.
    message_key: str
    resource_type: str
    resource_id: str          # identifiers.id
    generated_at: datetime
    payload: dict[str, Any]   # the full JSON (booleans normalised, text cleaned), for the mapping
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
        """Hash of everything but generated_at: identical republished messages hash the same.

        The full sha256 (:func:`stable_hash` keeps 128 bits): the engine stores the stable_hash
        of it and the mapping version, and stores upgraded by migration 011 (SQLite) / 008
        (PostgreSQL) kept the first 128 bits of those, so an upgrade re-applies nothing."""
        return _json_sha256({k: v for k, v in self.payload.items() if k != "generated_at"})


@dataclass(frozen=True)
class Unrecognised:
    """A well-formed message of a resource type this connector does not handle."""

    message_key: str
    resource_type: str


def stable_hash(obj: Any) -> str:
    """The first 128 bits of the sha256 of a JSON value with sorted keys (32 hex digits): equal
    content, equal hash, whatever the key order.

    The state store keeps one per person, member and resource to tell changed content from
    unchanged (issue 18: 16 bytes each instead of 32). 128 bits is the usual size of a content
    fingerprint; a chance collision needs about 2**64 distinct contents (the birthday bound), and
    NIST SP 800-107 Rev. 1, section 5.1 (https://csrc.nist.gov/pubs/sp/800/107/r1/final) allows
    a SHA-256 digest truncated to its leftmost bits.

    Safe for anything a parsed body or a built record holds: lone surrogates are hashed as
    themselves (surrogatepass), values JSON cannot express go through ``str``, and the rare value
    ``json.dumps`` refuses (mixed key types, an int too long for ``str``, a cycle) is first made
    plain by :func:`_plain`, so equal content still hashes equal and nothing raises.
    """
    return _json_sha256(obj)[:32]


def _json_sha256(obj: Any) -> str:
    """The full sha256 (hex) behind :func:`stable_hash`."""
    try:
        text = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        text = json.dumps(_plain(obj, 0), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _plain(obj: Any, depth: int) -> Any:
    if depth > 64:
        return "<deeper than 64>"
    if isinstance(obj, dict):
        return {str(k): _plain(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v, depth + 1) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, (str, float)):
        return obj
    if isinstance(obj, int):
        return obj if abs(obj) < 10**18 else f"int:{obj:x}"   # hex has no digit limit
    return str(obj)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def instance_of(jomablue_id: str | None) -> str | None:
    """`acme/event_person/51486` → `acme`; ids without slashes have no instance."""
    if not jomablue_id or "/" not in jomablue_id:
        return None
    return jomablue_id.split("/", 1)[0]


def _field_of(err: ErrorDetails) -> str:
    out = ""
    for p in err["loc"]:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            p = str(p)
            out += ("." if out else "") + (p if len(p) <= 64 else p[:61] + "...")
    return out


def _message_of(err: ErrorDetails) -> str:
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


# Keys only an SNS envelope has; Jomablue's own keys are lower-case snake_case.
_ENVELOPE_KEYS = ("Type", "Message", "MessageId", "TopicArn")


def parse_body(body: str | bytes, source: SourcePolicy | Sequence[str] | None = None) -> Message | Unrecognised:
    """Parse an SQS body; raise MessageError (quarantine) with the field and reason when it is bad.

    `source` is a :class:`SourcePolicy` or, as before it existed, the bare allow-list of topics.
    Nothing but MessageError leaves this function for any body: a defect met while reading one
    body costs that message (quarantined, with the exception named), never the batch.
    """
    try:
        return _parse(body, SourcePolicy.of(source))
    except MessageError:
        raise
    except Refused as exc:
        raise MessageError(exc.reason, field=exc.field) from None
    except Exception as exc:  # noqa: BLE001 - the isolation boundary: one body, one outcome
        raise MessageError(f"body could not be read ({type(exc).__name__}: {excerpt(str(exc))})",
                           field="body") from None


def _parse(body: str | bytes, source: SourcePolicy) -> Message | Unrecognised:
    if isinstance(body, (bytes, bytearray)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MessageError(f"body is not UTF-8 (byte 0x{body[exc.start]:02x} at offset {exc.start})",
                               field="body") from None
    if not isinstance(body, str):
        raise MessageError(f"body is {type(body).__name__}, not text", field="body")
    try:
        body.encode("utf-8")
    except UnicodeEncodeError as exc:
        # Only a queue adapter that decoded invalid UTF-8 leniently can hand over such a string.
        raise MessageError(f"body is not valid UTF-8 (undecodable data at character {exc.start})",
                           field="body") from None
    outer = loads(body, what="body", max_bytes=MAX_BODY_BYTES)
    if not isinstance(outer, dict):
        raise MessageError(f"body is JSON but not an object ({json_type(outer)})", field="body")
    if any(k in outer for k in _ENVELOPE_KEYS):
        topic, key, inner = _unwrap(outer, source)
    else:
        if source.allowed_topic_arns and not source.raw_delivery:
            raise MessageError("body has no SNS notification envelope (Type 'Notification'); with "
                               "sqs.allowed_topic_arns set, raw bodies are accepted only with sqs.raw_delivery: true",
                               field="Type")
        if utf8_size(body) > MAX_MESSAGE_BYTES:
            raise MessageError(f"body is {utf8_size(body):,} bytes, more than the {MAX_MESSAGE_BYTES:,} SNS can "
                               "publish", field="body")
        topic, key, inner = None, "sha256:" + _digest(body), outer
    return _validate(inner, key, topic)


def _unwrap(outer: dict[str, Any], source: SourcePolicy) -> tuple[str | None, str, dict[str, Any]]:
    """An SNS notification envelope → (TopicArn, message key, the Jomablue JSON)."""
    kind = outer.get("Type")
    if kind != "Notification":
        raise MessageError(f"SNS envelope Type {excerpt(kind, 40)} is not 'Notification'", field="Type")
    topic = outer.get("TopicArn")
    if topic is not None and not isinstance(topic, str):
        raise MessageError(f"SNS TopicArn must be text, not {json_type(topic)}", field="TopicArn")
    if source.allowed_topic_arns and topic not in source.allowed_topic_arns:
        raise MessageError(f"SNS TopicArn {excerpt(topic)} is not in sqs.allowed_topic_arns", field="TopicArn")
    mid = outer.get("MessageId")
    if mid is not None and (not isinstance(mid, str) or len(mid) > MAX_MESSAGE_ID_CHARS
                            or any(c.isspace() for c in mid)):
        raise MessageError(f"SNS MessageId {excerpt(mid, 40)} is not an SNS message id", field="MessageId")
    text = outer.get("Message")
    if not isinstance(text, str):
        raise MessageError(f"SNS Message must be text, not {json_type(text)}", field="Message")
    inner = loads(text, what="Message", max_bytes=MAX_MESSAGE_BYTES)
    if not isinstance(inner, dict):
        raise MessageError(f"SNS Message is JSON but not an object ({json_type(inner)})", field="Message")
    digest = _digest(text)
    key = f"{mid}:{digest[:16]}" if mid else "sha256:" + digest
    return topic, key, inner


def _validate(inner: dict[str, Any], key: str, topic: str | None) -> Message | Unrecognised:
    """The Jomablue layer: the documented core typed, timestamps plausible, the rest kept."""
    if "resource_type" not in inner:
        raise MessageError("not a Jomablue message (no resource_type)", field="resource_type")
    rtype = inner["resource_type"]
    if not isinstance(rtype, str):
        raise MessageError(f"resource_type must be text, not {json_type(rtype)}", field="resource_type")
    model = _MODELS.get(rtype)
    if model is None:
        return Unrecognised(key, rtype if len(rtype) <= 64 else rtype[:61] + "...")
    try:
        parsed = model.model_validate(inner)
    except ValidationError as exc:
        errors = exc.errors()
        err = errors[0]
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        field = _field_of(err)
        raise MessageError(f"{field}: {_message_of(err)}{more}", field=field) from None
    payload = parsed.model_dump(mode="json", exclude_unset=True)   # the keys as sent, no added nulls
    payload["generated_at"] = inner["generated_at"]
    data = payload.get("data")
    if isinstance(data, dict):
        now = datetime.now(timezone.utc)
        for k, v in data.items():
            if _is_time_key(k) and v not in (None, ""):
                try:
                    check_time(v, moment=_is_moment_key(k), now=now)
                except ValueError as exc:
                    raise MessageError(f"data.{k}: {exc}", field=f"data.{k}") from None
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
