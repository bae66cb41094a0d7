"""Progress people can watch: a tqdm bar on a terminal, `progress` log lines otherwise (done,
total when known, rate, ETA), for import, replay --all and reconcile."""

from __future__ import annotations

import json

import pytest
import structlog
from jbtest import cli, log_lines, write_config

from connector.progress import Progress, in_steps

from .archive import blob, envelope, event, person


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def captured():
    with structlog.testing.capture_logs() as entries:
        yield entries


def test_off_a_terminal_progress_is_log_lines_with_rate_and_eta(captured):
    clock = Clock()
    p = Progress("import", 1000, "bytes", tty=False, clock=clock, log_every=10)
    clock.t += 5
    p.update(100)                           # under 10 s since the start: no line yet
    clock.t += 5
    p.update(250, messages=40)
    assert p.fields() == {"task": "import", "done": 250, "total": 1000, "unit": "bytes", "rate_per_second": 25.0,
                          "eta_seconds": 30, "messages": 40}
    p.close()
    lines = [e for e in captured if e["event"] == "progress"]
    assert [e["done"] for e in lines] == [250, 250] and lines[-1]["finished"] is True
    assert lines[0]["eta_seconds"] == 30 and lines[0]["rate_per_second"] == 25.0


def test_an_unknown_total_has_no_eta():
    p = Progress("reconcile", None, "calls", tty=False, clock=Clock())
    p.update(3)
    assert p.fields()["total"] is None and p.fields()["eta_seconds"] is None


def test_on_a_terminal_it_is_a_tqdm_bar_on_stderr(capsys):
    p = Progress("replay", 4, tty=True)
    p.update(2)
    p.update(4)
    p.close()
    err = capsys.readouterr().err
    assert "replay" in err and "4/4" in err and "100%" in err


def test_in_steps_keeps_the_order_and_reports_each_step():
    import asyncio

    seen = []

    async def work(chunk):
        seen.append(list(chunk))
        return [x * 10 for x in chunk]

    out = asyncio.run(in_steps("replay", [1, 2, 3, 4, 5], 2, work))
    assert out == [10, 20, 30, 40, 50] and seen == [[1, 2], [3, 4], [5]]


@pytest.mark.e2e
def test_import_replay_all_and_reconcile_log_their_progress(tmp_path, emu):
    cfg = write_config(tmp_path, emu, None)
    export = tmp_path / "export.jsonl"
    export.write_bytes(blob([envelope(event(), "2026-11-23T00:00:00.000Z"),
                             envelope(person(1), "2026-11-23T00:00:01.000Z"), "not json"], False))
    res = cli("import", "--config", str(cfg), "--from", str(export))
    assert res.returncode == 0, res.stderr
    replay = cli("replay", "--config", str(cfg), "--all")
    recon = cli("reconcile", "--config", str(cfg), "--format", "json")
    assert recon.returncode == 0, recon.stderr
    json.loads(recon.stdout)                # stdout stays the report alone
    runs = ((res, "import", export.stat().st_size), (replay, "replay", 1), (recon, "reconcile", None))
    for result, task, total in runs:
        [last] = [x for x in log_lines(result.stderr) if x.get("event") == "progress" and x.get("finished")]
        assert last["task"] == task and last["total"] == total, last
        assert last["done"] == (total if total is not None else last["done"]) and "rate_per_second" in last
    assert [x for x in log_lines(recon.stderr) if x.get("event") == "progress"][-1]["done"] >= 1
