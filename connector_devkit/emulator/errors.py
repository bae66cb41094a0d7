"""The error a record write raises: Salesforce's (statusCode, message, fields) triples, in the
per-record form of sObject Collections and the whole-request form of single-record REST."""

from __future__ import annotations

from typing import Any


class RecordError(ValueError):
    """Salesforce rejected a record; ``errors`` are (statusCode, message, fields) triples."""

    def __init__(self, code: str, message: str, fields: list[str] | None = None,
                 more: list[tuple[str, str, list[str]]] | None = None):
        self.errors = [(code, message, list(fields or []))] + list(more or [])
        super().__init__("; ".join(f"{c}: {m}" for c, m, _ in self.errors))

    @property
    def code(self) -> str:
        return self.errors[0][0]

    def as_results(self) -> list[dict[str, Any]]:
        """Per-record form: [{statusCode, message, fields}]."""
        return [{"statusCode": c, "message": m, "fields": f} for c, m, f in self.errors]

    def as_response(self) -> list[dict[str, Any]]:
        """Whole-request form: [{message, errorCode, fields}], in that key order (REAL-REC
        forcedotcom/sf-fx-runtime-java mappings/create-required-field-missing.json); the
        per-record form keys ``statusCode`` instead (REST API Developer Guide, "Create Records
        Using sObject Collections", example response).

        INVALID_FIELD (an unknown column on create/update) has no ``fields`` key in the
        recordings (forcedotcom/sf-fx-runtime-java, sf-fx-runtime-java-sdk-impl-v1.1/src/test/
        resources/mappings/create-invalid-field.json and update-invalid-field.json).
        """
        return [{"message": m, "errorCode": c} if c == "INVALID_FIELD" else
                {"message": m, "errorCode": c, "fields": f} for c, m, f in self.errors]
