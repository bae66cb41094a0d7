"""Scheduled runs report too: `metrics.emf` prints one CloudWatch Embedded Metric Format record that
matches the run summary; `metrics.pushgateway_url` pushes the same metrics to a Pushgateway (a tiny
local HTTP server here that records what it was sent)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from jbtest import cli, log_lines, sample, write_config
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.e2e
P = "jomablue_connector"
# CloudWatch's units (the EMF specification's MetricDefinition.Unit: the PutMetricData units)
UNITS = {"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
         "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
         "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
         "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None"}


def _traffic(memq) -> None:
    memq.publish(sample("event"))
    memq.publish(sample("person"))
    memq.send_raw("this is { not json")


def validate_emf(doc: dict[str, Any]) -> None:
    """The structure the EMF specification requires (Amazon CloudWatch User Guide, "Specification:
    Embedded metric format"): `_aws` with an integer millisecond Timestamp and CloudWatchMetrics,
    each directive a Namespace, Dimensions (arrays of at most 30 keys, each a string member of the
    root) and Metrics (Name, optional Unit), each metric a number or an array of at most 100 numbers
    at the root."""
    aws = doc["_aws"]
    assert isinstance(aws["Timestamp"], int) and aws["Timestamp"] > 1_600_000_000_000
    assert isinstance(aws["CloudWatchMetrics"], list) and aws["CloudWatchMetrics"]
    for directive in aws["CloudWatchMetrics"]:
        assert isinstance(directive["Namespace"], str) and 1 <= len(directive["Namespace"]) <= 255
        assert isinstance(directive["Dimensions"], list)
        for dimension_set in directive["Dimensions"]:
            assert isinstance(dimension_set, list) and len(dimension_set) <= 30
            for key in dimension_set:
                assert isinstance(doc[key], str) and doc[key]
        assert 1 <= len(directive["Metrics"]) <= 100
        for metric in directive["Metrics"]:
            assert set(metric) <= {"Name", "Unit", "StorageResolution"}
            assert isinstance(metric["Name"], str) and 1 <= len(metric["Name"]) <= 255
            assert metric.get("Unit", "None") in UNITS
            value = doc[metric["Name"]]
            values = value if isinstance(value, list) else [value]
            assert 1 <= len(values) <= 100 and all(isinstance(v, (int, float)) for v in values)


def test_a_drain_run_with_emf_prints_one_record_matching_the_summary(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq, metrics__emf=True)
    _traffic(memq)
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0, res.stderr
    records = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{") and '"_aws"' in line]
    assert len(records) == 1, res.stdout
    [doc] = records
    validate_emf(doc)
    [summary] = [line for line in log_lines(res.stderr) if line.get("event") == "run_summary"]
    [logged] = [line for line in log_lines(res.stderr) if line.get("event") == "run_metrics"]
    counts = summary["counts"]
    assert doc[f"{P}_messages_total"] == sum(counts.values()) == 3
    assert doc[f"{P}_messages_total.quarantined"] == counts["quarantined"] == 1
    assert doc[f"{P}_messages_total.synced"] == counts["synced"] == 2
    assert doc[f"{P}_salesforce_api_calls_total"] == summary["api_calls"] > 0
    assert doc[f"{P}_quarantined_messages"] == 1
    assert doc[f"{P}_lag_seconds_count"] == 3
    assert doc["Queue"] == memq.queue_url.rsplit("/", 1)[-1] and doc["exit_code"] == 0
    names = {m["Name"] for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {f"{P}_messages_total", f"{P}_salesforce_api_calls_total", f"{P}_quarantined_messages",
            f"{P}_last_success_timestamp_seconds", f"{P}_lag_seconds"} <= names
    # The log line carries the same numbers under the same names (logs stay the source of truth).
    assert logged[f"{P}_messages_total"] == {"synced": 2, "quarantined": 1}
    assert logged[f"{P}_salesforce_api_calls_total"]["2xx"] == doc[f"{P}_salesforce_api_calls_total"]


def test_no_emf_record_unless_configured(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq)
    _traffic(memq)
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0, res.stderr
    assert '"_aws"' not in res.stdout


class _Recorder(BaseHTTPRequestHandler):
    pushes: list[tuple[str, str, bytes]] = []

    def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.pushes.append((self.command, self.path, body))
        self.send_response(200)
        self.end_headers()

    do_POST = do_PUT

    def log_message(self, *args: Any) -> None:
        pass


def test_a_run_pushes_its_metrics_to_the_pushgateway(tmp_path, emu, memq):
    _Recorder.pushes = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        cfg = write_config(tmp_path, emu, memq, metrics__pushgateway_url=f"http://127.0.0.1:{server.server_port}")
        _traffic(memq)
        res = cli("run", "--config", str(cfg), "--drain")
    finally:
        server.shutdown()
        server.server_close()
    assert res.returncode == 0, res.stderr
    [(method, path, body)] = _Recorder.pushes
    assert method == "PUT"     # replaces the previous run's group
    assert path == f"/metrics/job/jomablue_connector/queue/{memq.queue_url.rsplit('/', 1)[-1]}"
    found = {(s.name, tuple(sorted(s.labels.items()))): s.value
             for f in text_string_to_metric_families(body.decode("utf-8")) for s in f.samples}
    assert sum(v for (n, _), v in found.items() if n == f"{P}_messages_total") == 3
    assert found[(f"{P}_messages_total", (("outcome", "quarantined"), ("resource_type", "other")))] == 1
    assert found[(f"{P}_quarantined_messages", ())] == 1


def test_a_pushgateway_that_is_down_does_not_change_the_exit_status(tmp_path, emu, memq):
    cfg = write_config(tmp_path, emu, memq, metrics__pushgateway_url="http://127.0.0.1:9")
    _traffic(memq)
    res = cli("run", "--config", str(cfg), "--drain")
    assert res.returncode == 0, res.stderr
    assert any(line.get("event") == "pushgateway_failed" for line in log_lines(res.stderr))
