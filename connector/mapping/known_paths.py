"""Source paths known per resource type: the documented attributes plus the sample payloads.

Source: the attribute tables of the Jomablue Push API documentation (apidocs.jomablue.com) and
the sample payloads the tests use. A mapping may read a known
path, any ancestor of one (``data.metadata``, ``data.categories``), or anything under the open
maps (``data.custom_fields.*``, ``*.metadata.*``, ``context.event_metadata.*``). Other paths get
a warning: Jomablue may add fields, so the connector does not refuse them.
"""

from __future__ import annotations

from .paths import normalise

_COMMON = ("resource_type", "generated_at")
_CONTEXT_EVENT = ("context.event_id", "context.event_name", "context.event_metadata")
_CONTEXT_PERSON = (
    "context.person_first_name", "context.person_last_name", "context.person_email",
    "context.person_phone", "context.person_company", "context.person_id",
    "context.person_organisation_uid",
)

KNOWN_PATHS: dict[str, frozenset[str]] = {
    "event": frozenset((
        *_COMMON,
        "identifiers.id",
        "data.name", "data.start_time", "data.end_time", "data.short_description",
        "data.description", "data.person_count_goal", "data.venue_name", "data.venue_address",
        "data.timezone", "data.updated_at", "data.created_at", "data.metadata",
        "data.categories[*].id", "data.categories[*].name",
    )),
    "person": frozenset((
        *_COMMON, *_CONTEXT_EVENT,
        "identifiers.first_name", "identifiers.last_name", "identifiers.email",
        "identifiers.phone", "identifiers.company", "identifiers.id",
        "identifiers.organisation_uid",
        "data.job_title", "data.cancelled", "data.checked_in", "data.first_check_in",
        "data.categories[*].id", "data.categories[*].name", "data.custom_fields",
        "data.created_at", "data.updated_at",
    )),
    "lead": frozenset((
        *_COMMON, *_CONTEXT_EVENT, *_CONTEXT_PERSON,
        "identifiers.id", "identifiers.vendor_id", "identifiers.vendor_organisation_uid",
        "data.vendor_name", "data.captured_at", "data.notes", "data.tags[*]",
    )),
    "session_participation": frozenset((
        *_COMMON, *_CONTEXT_EVENT, *_CONTEXT_PERSON,
        "identifiers.id", "identifiers.session_id", "identifiers.session_organisation_uid",
        "data.session_name", "data.session_code", "data.session_start_time",
        "data.session_end_time", "data.attended", "data.inferred", "data.check_in",
        "data.check_out",
    )),
}


def _prefixes(paths: frozenset[str]) -> frozenset[str]:
    out: set[str] = set()
    for path in paths:
        parts = path.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            out.add(prefix)
            if prefix.endswith("[*]"):
                out.add(prefix[:-3])
    return frozenset(out)


_ALLOWED = {rtype: _prefixes(paths) for rtype, paths in KNOWN_PATHS.items()}


def is_known(resource_type: str, path: str) -> bool:
    """Whether ``path`` can exist in some known payload shape of ``resource_type``."""
    allowed = _ALLOWED.get(resource_type)
    if allowed is None:
        return True
    norm = normalise(path)
    if norm in allowed:
        return True
    parts = norm.split(".")
    if norm.startswith(("data.custom_fields.", "context.event_metadata.")):
        return True
    # *.metadata.* : any path that goes below a `metadata` object
    return any(p == "metadata" for p in parts[:-1])
