"""Metrics, health probes and run reports (the operator contract: README, Monitoring).

- :mod:`registry`: the Prometheus metrics, in a registry of their own per run;
- :mod:`run`: the runner's observer (:class:`RunMetrics`): counts batches, samples depths, reports;
- :mod:`health`: what /healthz and /readyz answer; :mod:`server`: the listener serving them;
- :mod:`report`: the EMF record and the Pushgateway push at the end of a run;
- :mod:`check`: `connector status --check`.
"""

from typing import Any

__all__ = ["RunMetrics"]


def __getattr__(name: str) -> Any:
    # Lazy: `status --check` imports this package and needs no prometheus_client.
    if name == "RunMetrics":
        from connector.metrics.run import RunMetrics

        return RunMetrics
    raise AttributeError(name)
