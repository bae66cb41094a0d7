"""One run's metrics: what the runner tells (iterations, batches), what the gateway counted, and
what is sampled (queue depths, quarantined messages). In service mode with `metrics.port` it
serves them with /healthz and /readyz; at the end of every run it writes the EMF record and pushes
to the Pushgateway when configured, and logs the same numbers under the same names.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from connector import __version__, logs
from connector.config import Config
from connector.errors import ConfigError
from connector.metrics.health import Liveness, liveness_bound, readiness_for
from connector.metrics.registry import PREFIX, ConnectorMetrics
from connector.metrics.server import MetricsServer, make_app

DEPTH_SAMPLE_SECONDS = 60.0     # SQS depth at most once a minute (each look is a billed request)
LOG_SECONDS = 60.0              # a service logs its metrics (run_metrics) once a minute, not only at its end


def publish_time(ib: Any) -> float | None:
    """When the message was published: the SNS envelope's Timestamp, else SQS's SentTimestamp."""
    body = getattr(ib, "body", "")
    if body[:1] == "{" and '"Timestamp"' in body:
        try:
            doc = json.loads(body)
            if isinstance(doc, dict) and doc.get("Type") == "Notification" and isinstance(doc.get("Timestamp"), str):
                return datetime.fromisoformat(doc["Timestamp"].replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    sent = getattr(ib, "sent_at", None)
    return float(sent) if sent else None


class RunMetrics:
    """The runner's observer. Create with :meth:`start`; the runner calls `iteration`, `pausing`
    and `batch`; the command calls `finish` with the run's result."""

    def __init__(self, cfg: Config, wired: Any, queue: Any, *, service: bool) -> None:
        self.cfg = cfg
        self.state = wired.state
        self.gateway = wired.gateway
        self.queue = queue
        self.log = logs.get()
        mappings = getattr(wired, "mappings", None)
        self.metrics = ConnectorMetrics(getattr(mappings, "resources", {}).keys())
        mapping_version = str(getattr(mappings, "version", ""))[:12]     # the sha256 of the YAML files, short
        self.metrics.build.info({"version": __version__, "mapping_version": mapping_version})
        self.metrics.budget_fraction.set(cfg.salesforce.daily_api_budget)
        self.liveness = Liveness(liveness_bound(cfg), progress=lambda: self.gateway.stats.calls)
        self._depth_at = -1e18
        # Per batch: its duration and its largest lag (the EMF record's values: at most 100 kept,
        # the largest, so an alarm on Maximum still sees the worst batch of a long run).
        self.batch_seconds: list[float] = []
        self.batch_lags: list[float] = []
        self.service = service
        self._logged_at = time.monotonic()
        self.server: MetricsServer | None = None
        if service and cfg.metrics.port:
            from connector.redact import redactor_for

            redactor = redactor_for(cfg, self.state)     # health bodies carry no email either
            ready = readiness_for(self.state, queue, self.gateway, lambda text: redactor.text(text) or "")
            self.readiness = ready
            app = make_app(self.metrics.registry, self._healthz, ready.problems, before_scrape=self.refresh)
            try:
                self.server = MetricsServer(app, cfg.metrics.port)
            except OSError as exc:     # the port is taken, or privileged
                raise ConfigError([f"metrics.port: cannot listen on port {cfg.metrics.port} "
                                   f"({exc.strerror or exc})"]) from None
            self.log.info("metrics_listening", port=self.server.port, paths=["/metrics", "/healthz", "/readyz"])

    @classmethod
    def start(cls, cfg: Config, wired: Any, queue: Any, *, service: bool) -> RunMetrics:
        return cls(cfg, wired, queue, service=service)

    # -- told by the runner --------------------------------------------------------------------
    def iteration(self) -> None:
        self.liveness.beat()

    def pausing(self, seconds: float) -> None:
        self.liveness.beat(grace=seconds)

    def batch(self, batch: Sequence[Any], outcomes: Sequence[Any], seconds: float) -> None:
        m = self.metrics
        m.batch_duration.observe(seconds)
        now = time.time()
        committed = False
        worst: float | None = None
        for ib, o in zip(batch, outcomes, strict=True):
            label = f"would_{o.status}" if o.planned else str(o.status)   # as in the message log line
            m.count_message(label, o.resource_type)
            if o.leaves_queue and not o.planned:
                committed = True
                published = publish_time(ib)
                if published is not None:
                    lag = max(0.0, now - published)
                    m.lag.observe(lag)
                    worst = lag if worst is None else max(worst, lag)
        if committed:
            m.last_success.set(now)
        _keep_largest(self.batch_seconds, seconds)
        if worst is not None:
            _keep_largest(self.batch_lags, worst)
        self.liveness.beat()
        self._read_gateway()
        if self.service and time.monotonic() - self._logged_at >= LOG_SECONDS:
            self._logged_at = time.monotonic()
            self.log.info("run_metrics", running=True, **snapshot(self.metrics, self.batch_lags, self.batch_seconds))

    # -- sampled -------------------------------------------------------------------------------
    def _read_gateway(self) -> None:
        self.metrics.read_call_stats(self.gateway.stats)
        self.metrics.read_usage(self.gateway.guard.used, self.gateway.guard.max)
        self.metrics.read_sqs_retries(int(getattr(self.queue, "retries", 0) or 0))

    def refresh(self, depths: bool = True) -> None:
        """Before a scrape or a report: the gateway's counts, the quarantine, the queue depths
        (at most once a minute). Failures leave the last values (readiness says what is down)."""
        self._read_gateway()
        try:
            self.metrics.quarantined.set(len(self.state.quarantined()))
        except Exception as exc:  # noqa: BLE001 - the store is down: /readyz says so
            self.log.debug("metrics_sample_failed", part="state_store", reason=type(exc).__name__)
        if depths and time.monotonic() - self._depth_at >= DEPTH_SAMPLE_SECONDS and hasattr(self.queue, "depths"):
            self._depth_at = time.monotonic()
            try:
                seen = self.queue.depths()
            except Exception as exc:  # noqa: BLE001 - SQS unreachable: /readyz says so
                self.log.debug("metrics_sample_failed", part="sqs", reason=type(exc).__name__)
                return
            self.metrics.queue_messages.labels(queue="main").set(seen.visible)
            self.metrics.queue_in_flight.set(seen.in_flight)
            if seen.dead_letter is not None:
                self.metrics.queue_messages.labels(queue="dead_letter").set(seen.dead_letter)

    def _healthz(self) -> dict[str, str]:
        problem = self.liveness.check()
        return {"consume_loop": problem} if problem else {}

    # -- the end of the run --------------------------------------------------------------------
    def close(self) -> None:
        """Stop the listener (idempotent)."""
        if self.server is not None:
            self.server.close()
            self.server = None

    def finish(self, result: Any) -> dict[str, Any]:
        """Stop the listener; log the run's metrics (`run_metrics`, the metric names as keys);
        write the EMF record and push to the Pushgateway when configured. Returns the snapshot."""
        from connector.metrics.report import emf_record, push

        self.close()
        # The queue's depth costs a request: only for a report that carries it.
        self.refresh(depths=bool(self.cfg.metrics.emf or self.cfg.metrics.pushgateway_url))
        snap = snapshot(self.metrics, self.batch_lags, self.batch_seconds)
        self.log.info("run_metrics", exit_code=getattr(result, "exit_code", None), **snap)
        if self.cfg.metrics.emf:
            emf_record(self.cfg, snap, getattr(result, "exit_code", None))
        if self.cfg.metrics.pushgateway_url:
            push(self.cfg, self.metrics.registry)
        return snap


def _keep_largest(values: list[float], value: float, keep: int = 100) -> None:
    values.append(round(value, 3))
    if len(values) > keep:
        values.remove(min(values))


def snapshot(m: ConnectorMetrics, lags: list[float], durations: list[float]) -> dict[str, Any]:
    """The run's metrics as plain numbers under their Prometheus names: the run_metrics log line,
    the EMF record and the tests read the same dictionary. The two histograms are given per batch
    (its largest lag, its duration); their counts are under `*_count`."""
    out: dict[str, Any] = {
        f"{PREFIX}_messages_total": m.totals(f"{PREFIX}_messages_total", "outcome"),
        f"{PREFIX}_salesforce_api_calls_total": m.totals(f"{PREFIX}_salesforce_api_calls_total", "status"),
        f"{PREFIX}_salesforce_retries_total": m.value(f"{PREFIX}_salesforce_retries_total") or 0.0,
        f"{PREFIX}_sqs_retries_total": m.value(f"{PREFIX}_sqs_retries_total") or 0.0,
        f"{PREFIX}_quarantined_messages": m.value(f"{PREFIX}_quarantined_messages") or 0.0,
        # None (left out of the EMF record) when no batch committed in this run
        f"{PREFIX}_last_success_timestamp_seconds": m.value(f"{PREFIX}_last_success_timestamp_seconds") or None,
        f"{PREFIX}_lag_seconds": list(lags),
        f"{PREFIX}_lag_seconds_count": m.value(f"{PREFIX}_lag_seconds_count") or 0.0,
        f"{PREFIX}_batch_duration_seconds": list(durations),
        f"{PREFIX}_batch_duration_seconds_count": m.value(f"{PREFIX}_batch_duration_seconds_count") or 0.0,
    }
    for name in ("salesforce_daily_api_requests_used", "salesforce_daily_api_requests_limit"):
        value = m.value(f"{PREFIX}_{name}")
        if value:
            out[f"{PREFIX}_{name}"] = value
    for queue in ("main", "dead_letter"):
        value = m.value(f"{PREFIX}_queue_messages", {"queue": queue})
        if value is not None:
            out.setdefault(f"{PREFIX}_queue_messages", {})[queue] = value
    return out
