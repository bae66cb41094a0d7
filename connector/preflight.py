"""Preflight: before a run takes any message, check the mapping against the org's describes.

A mapping naming a field the org lacks (or a value its restricted picklist refuses) would fail
every message at write time and quarantine the whole backlog; checked here, the run stops with
exit 2 naming ``file:line`` and the field, and every message stays queued.

- The checks are ``mapping validate --against-org``'s, the same code
  (:func:`connector.mapping.validate.check_against_org`).
- The describes of every mapped object come in ONE ``/composite`` request (GET subrequests,
  25 at most per request; "The entire series of requests counts as a single call toward your API limits":
  REST API Developer Guide, Composite).
- They are cached in the state store with their fetch time and fetched again when older than a
  day, when a caller asks (``refresh=True``; the engine forgets them after a write fails with
  ``INVALID_FIELD``: :func:`forget_describes`), and when the cached ones fail a check (the run
  only stops on what the org says now: a field the admin restored passes at once).
- Record types the mapping names are resolved to their ``RecordTypeId`` by the same checks.
- ``salesforce.api_version`` must be one the connector's requests work with
  (:func:`check_api_version`), checked before any call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from connector.mapping import MappingSet, Problem
from connector.mapping.errors import Problems
from connector.mapping.validate import check_against_org

MAX_AGE = timedelta(days=1)
COMPOSITE_LIMIT = 25  # subrequests in one /composite request


class DescribeStore(Protocol):
    """The two state-store methods preflight uses (connector.state.base.StateStore)."""

    def describes(self) -> dict[str, dict[str, Any]]: ...
    def put_describes(self, describes: dict[str, dict[str, Any] | None]) -> None: ...


class Gateway(Protocol):
    api_version: str

    async def call(self, kind: str, method: str, path: str, **kwargs: Any) -> Any: ...
    async def get_many(self, kind: str, paths: Sequence[str], per_call: int, ref: str = "r") -> list[Any]: ...


@dataclass
class PreflightReport:
    problems: list[Problem] = field(default_factory=list)
    fetched: bool = False  # describes came from the org (not the cache) this time
    fetched_at: str | None = None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


def mapped_objects(ms: MappingSet) -> list[str]:
    """Every object the org checks look at, in a stable order."""
    names: list[str] = []

    def add(name: str) -> None:
        if name not in names:
            names.append(name)

    for rm in ms.resources.values():
        for rec in rm.records():
            add(rec.object)
    if ms.statuses:
        add("CampaignMemberStatus")
    if ms.matching.organisation_uid_field and "person" in ms.resources:
        add("Lead")
        add("Contact")
    return names


async def fetch_describes(gateway: Gateway, sobjects: list[str]) -> dict[str, dict[str, Any] | None]:
    """sobject → describe (None when the org has no such object), in one /composite request."""
    # The gateway classifies each subrequest (connector/salesforce/classify.py): a 404 is None,
    # a 5xx is retried, anything else raises what it means.
    bodies = await gateway.get_many("describe", [f"sobjects/{name}/describe" for name in sobjects],
                                    COMPOSITE_LIMIT, ref="d")
    return {name: body if isinstance(body, dict) else None for name, body in zip(sobjects, bodies, strict=True)}


def _fresh(fetched_at: str, now: datetime, max_age: timedelta) -> bool:
    try:
        return now - datetime.fromisoformat(fetched_at) < max_age
    except ValueError:
        return False


async def load_describes(gateway: Gateway, store: DescribeStore, sobjects: list[str], *,
                         refresh: bool = False, max_age: timedelta = MAX_AGE,
                         ) -> tuple[dict[str, dict[str, Any] | None], bool, str | None]:
    """(describes, fetched from the org?, fetched_at): the cache when every object is in it
    and fresh, else one fetch that replaces the cache."""
    now = datetime.now(timezone.utc)
    cached = store.describes()
    if not refresh and sobjects and all(s in cached and _fresh(cached[s]["fetched_at"], now, max_age)
                                        for s in sobjects):
        return ({s: cached[s]["describe"] for s in sobjects}, False,
                min(cached[s]["fetched_at"] for s in sobjects))
    fetched = await fetch_describes(gateway, sobjects)
    store.put_describes(fetched)
    return fetched, True, now.isoformat(timespec="milliseconds")


def forget_describes(store: DescribeStore) -> None:
    """Drop the cache, so the next preflight fetches again (after a write-time INVALID_FIELD)."""
    store.put_describes({})


#: The lowest API version each request the connector makes needs (Salesforce REST API Developer
#: Guide): "Upsert Records Using sObject Collections ... is available in API version 46 and later"
#: (resources_composite_sobjects_collections_upsert); "Duplicate Rule Header ... available in API
#: version 52.0 and later" (headers_duplicaterules). The oldest need comes first.
API_MINIMUMS: tuple[tuple[float, str], ...] = (
    (46.0, "sObject Collections upsert needs"),
    (52.0, "the Sforce-Duplicate-Rule-Header (salesforce.duplicate_rules) needs"),
)
API_VERSION_SETTING = "salesforce.api_version"


def check_api_version(api_version: str) -> list[Problem]:
    """An error naming ``salesforce.api_version`` when it is below what the connector's requests need."""
    try:
        have = float(api_version)
    except ValueError:
        return [Problem(API_VERSION_SETTING, 0, f"{api_version!r} is not an API version such as \"62.0\"")]
    for need, what in API_MINIMUMS:
        if have < need:
            return [Problem(API_VERSION_SETTING, 0,
                            f"\"{api_version}\" is below {need:.1f}, which {what}; set it to "
                            f"\"{API_MINIMUMS[-1][0]:.1f}\" or newer")]
    return []


def check_mapping(ms: MappingSet, describes: dict[str, dict[str, Any] | None]) -> list[Problem]:
    """The against-org checks on given describes (objects absent from ``describes`` do not exist)."""
    problems = Problems()
    check_against_org(ms, describes.get, problems)
    problems.items.sort(key=lambda p: (p.file, p.line))
    return problems.items


async def preflight(gateway: Gateway, store: DescribeStore, ms: MappingSet, *,
                    refresh: bool = False) -> PreflightReport:
    """Check the mapping against the org; raises StopRun/FatalError when the org cannot be read.

    A too-low ``salesforce.api_version`` is reported before any call (every write would fail)."""
    version_problems = check_api_version(gateway.api_version)
    if version_problems:
        return PreflightReport(version_problems)
    sobjects = mapped_objects(ms)
    describes, fetched, fetched_at = await load_describes(gateway, store, sobjects, refresh=refresh)
    problems = check_mapping(ms, describes)
    if not fetched and any(p.severity == "error" for p in problems):
        # Never stop a run on cached describes: the admin may have fixed the org since (a field
        # restored after a run stopped on it); one more call reads the org as it is now.
        describes, fetched, fetched_at = await load_describes(gateway, store, sobjects, refresh=True)
        problems = check_mapping(ms, describes)
    return PreflightReport(problems, fetched, fetched_at)
