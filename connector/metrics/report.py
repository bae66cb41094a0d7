"""A run's metrics for the platforms that do not scrape: one CloudWatch Embedded Metric Format
record on stdout (`metrics.emf`) and a Pushgateway push (`metrics.pushgateway_url`).

EMF: written by the `aws-embedded-metrics` library in its Local environment (its console sink:
stdout, no CloudWatch agent), so ECS (awslogs), EKS with Container Insights or Fluent Bit turn the
line into metrics. Specification: "Specification: Embedded metric format" in the Amazon
CloudWatch User Guide (AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
The library splits a record past 100 metrics or 100 values a metric; a record here stays below
both (one metric per outcome, at most MAX_VALUES values a histogram).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlparse

from prometheus_client import CollectorRegistry, push_to_gateway

from connector.config import Config
from connector.metrics.registry import PREFIX

MAX_VALUES = 100
JOB = "jomablue_connector"


def queue_name(cfg: Config) -> str:
    return cfg.sqs.queue_url.rstrip("/").rsplit("/", 1)[-1]


def emf_values(snap: dict[str, Any]) -> list[tuple[str, float | list[float], str]]:
    """(name, value or values, CloudWatch unit) for every metric of the snapshot; a labelled
    counter becomes one metric per label value, named `<name>.<value>` (EMF has no labels
    within one record), plus the total under the plain name."""
    out: list[tuple[str, float | list[float], str]] = []
    for name, value in snap.items():
        if name.endswith("_seconds") and isinstance(value, list):
            if value:
                out.append((name, value[:MAX_VALUES], "Seconds"))
        elif isinstance(value, dict) and name.endswith("_total"):
            out.append((name, float(sum(value.values())), "Count"))
            out += [(f"{name}.{label}", float(n), "Count") for label, n in sorted(value.items())]
        elif isinstance(value, dict) and name == f"{PREFIX}_queue_messages":
            out += [(f"{name}.{q}", float(n), "Count") for q, n in sorted(value.items())]
        elif isinstance(value, (int, float)) and not isinstance(value, bool):   # None: not this run
            unit = "Seconds" if name.endswith("_seconds") and "timestamp" not in name else \
                "None" if "timestamp" in name else "Count"
            out.append((name, float(value), unit))
    return out


def emf_record(cfg: Config, snap: dict[str, Any], exit_code: int | None) -> None:
    """Print one EMF record (the library's console sink writes it to stdout)."""
    os.environ.setdefault("AWS_EMF_ENVIRONMENT", "Local")     # stdout, no agent
    from aws_embedded_metrics.config import get_config
    from aws_embedded_metrics.logger.metrics_logger_factory import create_metrics_logger

    get_config().environment = "Local"
    logger = create_metrics_logger()
    logger.set_namespace(cfg.metrics.namespace)
    logger.set_dimensions({"Queue": queue_name(cfg)}, use_default=False)
    for name, value, unit in emf_values(snap):
        for v in value if isinstance(value, list) else [value]:
            logger.put_metric(name, v, unit)
    logger.set_property("exit_code", exit_code)
    logger.flush_sync()


def push(cfg: Config, registry: CollectorRegistry) -> None:
    """Push the run's registry to the Pushgateway (job `jomablue_connector`, grouped by queue),
    replacing the previous run's group. A failed push is logged, never fails the run."""
    from connector import logs

    url = str(cfg.metrics.pushgateway_url)
    try:
        push_to_gateway(url, job=JOB, registry=registry, grouping_key={"queue": queue_name(cfg)}, timeout=10)
    except Exception as exc:  # noqa: BLE001 - metrics must not change a run's exit status
        logs.get().warning("pushgateway_failed", url=urlparse(url)._replace(netloc=urlparse(url).hostname or "")
                           .geturl(), reason=f"{type(exc).__name__}: {str(exc)[:200]}")
