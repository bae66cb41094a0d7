"""The composition root: configuration → concrete adapters → engine. The only place that knows both sides."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from connector.config import Config
from connector.errors import ConfigError
from connector.mapping import MappingError, MappingSet, load_mapping_set
from connector.payloads import SourcePolicy
from connector.queue import SqsQueue
from connector.salesforce.auth import TokenSource
from connector.salesforce.gateway import PinnedSession, SalesforceGateway, UsageGuard
from connector.state import DryRunStore, StateStore, open_state
from connector.sync.engine import SyncEngine
from connector.sync.writer import PlanningWriter, SalesforceWriter, Writer


@dataclass
class Wired:
    cfg: Config
    state: StateStore
    mappings: MappingSet
    gateway: SalesforceGateway
    engine: SyncEngine


def load_mappings(cfg: Config) -> MappingSet:
    try:
        return load_mapping_set(cfg.mapping.path)
    except MappingError as exc:
        raise ConfigError([str(p) for p in exc.problems if p.severity == "error"]) from None


def build_gateway(cfg: Config, state: StateStore | None = None) -> SalesforceGateway:
    if getattr(cfg, "offline", False):   # duck-typed configs (tests) are online
        raise ConfigError(["this command loaded the configuration without Salesforce credentials "
                           "(offline); it cannot call Salesforce"])
    sf = cfg.salesforce
    session = PinnedSession(str(sf.ca_bundle) if sf.ca_bundle else True)
    guard = UsageGuard(sf.daily_api_budget)
    if state is not None:
        seen = state.api_usage()
        # Seed the guard only from a recent reading: the allocation is a rolling 24 h window.
        if seen and datetime.fromisoformat(seen["seen_at"]) > datetime.now(timezone.utc) - timedelta(minutes=15):
            guard.used, guard.max = seen["used"], seen["max"]
            guard.from_store = True
    return SalesforceGateway(
        instance_url=sf.instance_url, api_version=sf.api_version,
        tokens=TokenSource(sf.auth, session, timeout=sf.timeout_seconds), session=session,
        requests_per_second=sf.requests_per_second, max_in_flight=sf.max_in_flight, guard=guard,
        timeout=sf.timeout_seconds, retry_attempts=sf.retry_attempts, retry_max_wait=sf.retry_max_wait_seconds,
        retry_base_wait=sf.retry_base_seconds, write_headers=sf.write_headers(),
        # With PostgreSQL, one rate limit and in-flight cap for every replica (README: Replicas).
        shared_limit=state.shared_call_limit(sf.requests_per_second, sf.max_in_flight) if state else None,
    )


def wire(cfg: Config, dry_run: bool = False) -> Wired:
    mappings = load_mappings(cfg)
    state = open_state(cfg)
    gateway = build_gateway(cfg, state)
    # A dry run plans instead of writing and remembers nothing; reads still go to Salesforce.
    writer: Writer = PlanningWriter(gateway) if dry_run else SalesforceWriter(gateway)
    engine_state: StateStore = DryRunStore(state) if dry_run else state
    engine = SyncEngine(engine_state, mappings, writer, instances=cfg.jomablue.instances,
                        source=SourcePolicy(tuple(cfg.sqs.allowed_topic_arns), cfg.sqs.raw_delivery))
    return Wired(cfg, engine_state, mappings, gateway, engine)


def build_queue(cfg: Config) -> SqsQueue:
    return SqsQueue(cfg.sqs)
