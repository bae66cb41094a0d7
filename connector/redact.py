"""Personal data out of logs, quarantine reasons and reports (`logging.redact_personal_data`).

Emails and names become stable keyed hashes: ``email:5f3a9c01d2e4`` is the same for the same
address on every run of one deployment (so an admin can still follow one person through the
logs) but cannot be reversed or recomputed without the key. The key is
`logging.redaction_key` when configured, else a random key made once and kept in the state store.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from typing import Any

EMAIL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+'\-]*@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
# Payload keys and Salesforce fields whose values are a person's name, email or phone.
_NAME_KEYS = {"first_name", "last_name", "person_first_name", "person_last_name", "firstname",
              "lastname", "name_of_person"}
_EMAIL_KEYS = {"email", "person_email"}
_PHONE_KEYS = {"phone", "person_phone", "mobilephone"}


class Redactor:
    """Replaces personal data with keyed hashes; with no key it changes nothing."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def hash(self, kind: str, value: str) -> str:
        assert self._key is not None
        digest = hmac.new(self._key, value.strip().lower().encode("utf-8"), hashlib.sha256).hexdigest()
        return f"{kind}:{digest[:12]}"

    def email(self, value: str | None) -> str | None:
        return self.hash("email", value) if self.enabled and value else value

    def name(self, value: str | None) -> str | None:
        return self.hash("name", value) if self.enabled and value else value

    def text(self, value: str | None) -> str | None:
        """Free text (a quarantine reason, a log value): every email address in it replaced."""
        if not self.enabled or not value:
            return value
        return EMAIL.sub(lambda m: self.hash("email", m.group(0)), value)

    def field(self, name: str | None, value: Any) -> Any:
        """A field's value, by what the field holds (FirstName, Email, identifiers.phone...)."""
        if not self.enabled or value in (None, "") or not isinstance(value, str):
            return value
        key = (name or "").rsplit(".", 1)[-1].lower().removesuffix("__c")
        if key in _EMAIL_KEYS:
            return self.hash("email", value)
        if key in _NAME_KEYS:
            return self.hash("name", value)
        if key in _PHONE_KEYS:
            return self.hash("phone", value)
        return self.text(value)

    def payload(self, node: Any, key: str | None = None) -> Any:
        """A decoded message body with names, emails and phones replaced (keys kept)."""
        if isinstance(node, dict):
            return {k: self.payload(v, str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [self.payload(v, key) for v in node]
        return self.field(key, node)

    def body(self, text: str | None) -> str | None:
        """A stored message body: JSON (an SNS envelope's Message too) redacted field by field."""
        if not self.enabled or not text:
            return text
        try:
            doc = json.loads(text)
        except ValueError:
            return self.text(text)
        if isinstance(doc, dict) and isinstance(doc.get("Message"), str):
            doc["Message"] = self.body(doc["Message"])
            return json.dumps(doc, ensure_ascii=False)
        return json.dumps(self.payload(doc), ensure_ascii=False)


NO_REDACTION = Redactor(None)


def redactor_for(cfg: Any, state: Any | None) -> Redactor:
    """The configured redactor: the configured key, else one kept in the state store."""
    logging_cfg = getattr(cfg, "logging", None)
    if logging_cfg is None or not logging_cfg.redact_personal_data:
        return NO_REDACTION
    if logging_cfg.redaction_key is not None:
        return Redactor(logging_cfg.redaction_key.get_secret_value().encode("utf-8"))
    if state is None:
        raise ValueError("redaction without a configured key needs the state store")
    return Redactor(state.setting("redaction_key", secrets.token_hex(32)).encode("utf-8"))
