"""The connector's Prometheus metrics, each run (or service) in its own CollectorRegistry.

The first five names are fixed by the operator contract (Metrics and health); dashboards and alerts
rely on them. Labels are low-cardinality only: an outcome, a known resource type (anything else
counts as `other`), a call kind and an HTTP status; never a person's id, name or email.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

PREFIX = "jomablue_connector"
# Publish to commit: a live batch waits its window (seconds) and a backlog waits minutes to hours.
LAG_BUCKETS = (0.5, 1, 2, 3, 5, 7, 10, 15, 30, 60, 120, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600)
BATCH_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)


class ConnectorMetrics:
    """Every metric the connector exposes, registered in a registry of its own (not the global one):
    runs in one process (tests, embedding) never see each other's numbers."""

    def __init__(self, resource_types: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.resource_types = frozenset(resource_types)
        r = self.registry
        self.messages = Counter(f"{PREFIX}_messages", "Messages handled, by outcome (as in the message log "
                                "lines) and resource type", ["outcome", "resource_type"], registry=r)
        self.api_calls = Counter(f"{PREFIX}_salesforce_api_calls", "Salesforce API calls, by kind and HTTP "
                                 "status (2xx: answered; transport: no HTTP answer)", ["kind", "status"], registry=r)
        self.retries = Counter(f"{PREFIX}_salesforce_retries", "Salesforce API calls repeated after a "
                               "transient failure", registry=r)
        self.sqs_retries = Counter(f"{PREFIX}_sqs_retries", "SQS requests repeated after throttling or a "
                                   "network error", registry=r)
        self.quarantined = Gauge(f"{PREFIX}_quarantined_messages", "Quarantined messages waiting for a "
                                 "replay or a drop", registry=r)
        self.last_success = Gauge(f"{PREFIX}_last_success_timestamp_seconds", "When a batch last committed "
                                  "(Unix time)", registry=r)
        self.lag = Histogram(f"{PREFIX}_lag_seconds", "Publish (SNS Timestamp, else SQS SentTimestamp) to "
                             "commit", buckets=LAG_BUCKETS, registry=r)
        self.batch_duration = Histogram(f"{PREFIX}_batch_duration_seconds", "Plan, write and commit of one "
                                        "batch", buckets=BATCH_BUCKETS, registry=r)
        self.budget_used = Gauge(f"{PREFIX}_salesforce_daily_api_requests_used", "The org's API requests "
                                 "used in the rolling 24 hours (Sforce-Limit-Info)", registry=r)
        self.budget_limit = Gauge(f"{PREFIX}_salesforce_daily_api_requests_limit", "The org's daily API "
                                  "request allocation (Sforce-Limit-Info)", registry=r)
        self.budget_fraction = Gauge(f"{PREFIX}_salesforce_daily_api_budget_fraction", "salesforce."
                                     "daily_api_budget: the fraction of the allocation the connector stops at",
                                     registry=r)
        self.queue_messages = Gauge(f"{PREFIX}_queue_messages", "SQS messages waiting (ApproximateNumberOf"
                                    "Messages), sampled at most once a minute", ["queue"], registry=r)
        self.queue_in_flight = Gauge(f"{PREFIX}_queue_messages_in_flight", "SQS messages received and not "
                                     "yet deleted or visible again, sampled at most once a minute", registry=r)
        self.build = Info(f"{PREFIX}_build", "The connector's version and its mapping set's hash", registry=r)
        self.up_since = Gauge(f"{PREFIX}_start_time_seconds", "When this run started (Unix time)", registry=r)
        self.up_since.set(time.time())
        self._calls_seen: dict[tuple[str, str], int] = {}
        self._retries_seen = 0
        self._sqs_retries_seen = 0

    def resource_label(self, resource_type: str | None) -> str:
        return resource_type if resource_type in self.resource_types else "other"

    def count_message(self, outcome: str, resource_type: str | None) -> None:
        self.messages.labels(outcome=outcome, resource_type=self.resource_label(resource_type)).inc()

    def read_call_stats(self, stats: Any) -> None:
        """Bring the API call counters up to the gateway's CallStats (which only ever grow)."""
        by_status: dict[tuple[str, str], int] = dict(getattr(stats, "by_kind_status", {}) or {})
        if not by_status:     # a gateway that counts by kind only: the status is unknown
            by_status = {(kind, "unknown"): n for kind, n in (getattr(stats, "by_kind", {}) or {}).items()}
        for key, n in by_status.items():
            delta = n - self._calls_seen.get(key, 0)
            if delta > 0:
                self.api_calls.labels(kind=key[0], status=key[1]).inc(delta)
                self._calls_seen[key] = n
        retries = int(getattr(stats, "retries", 0) or 0)
        if retries > self._retries_seen:
            self.retries.inc(retries - self._retries_seen)
            self._retries_seen = retries

    def read_sqs_retries(self, retries: int) -> None:
        if retries > self._sqs_retries_seen:
            self.sqs_retries.inc(retries - self._sqs_retries_seen)
            self._sqs_retries_seen = retries

    def read_usage(self, used: int | None, limit: int | None) -> None:
        if used is not None and limit:
            self.budget_used.set(used)
            self.budget_limit.set(limit)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """One sample's value from this registry (tests, the EMF record)."""
        return self.registry.get_sample_value(name, labels or {})

    def totals(self, name: str, label: str) -> dict[str, float]:
        """A counter's samples summed by one label (`messages_total` by outcome...)."""
        out: dict[str, float] = {}
        for family in self.registry.collect():
            for s in family.samples:
                if s.name == name and label in s.labels:
                    out[s.labels[label]] = out.get(s.labels[label], 0.0) + s.value
        return out
