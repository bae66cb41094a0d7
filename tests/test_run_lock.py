"""One run per SQLite state store, and migrations that two starting processes cannot trip over."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from jbtest import cli, write_config

from connector.errors import StopRun
from connector.state.sqlite import RunLock

# The processes import first and say so, then wait for the parent's word and the instant it names:
# the race is on opening the store, not on starting an interpreter.
_OPEN_AT = textwrap.dedent("""
    import sys, time
    from connector.state import open_state
    print("ready", flush=True)
    at = float(sys.stdin.readline())
    time.sleep(max(0.0, at - time.time()))
    store = open_state(sys.argv[1])
    assert store.db["people"].exists()
    print("ok")
""")


@pytest.mark.process
def test_two_processes_starting_on_a_new_state_file_both_open_it(tmp_path):
    # Four new files, three processes racing on each, all at once.
    procs = [subprocess.Popen([sys.executable, "-c", _OPEN_AT, str(tmp_path / f"s{attempt}.db")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for attempt in range(4) for _ in range(3)]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
        at = f"{time.time() + 0.2}\n"
        for p in procs:
            p.stdin.write(at)
            p.stdin.flush()
        results = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0 and out.strip() == "ok", err


def test_a_second_holder_is_refused_at_once_or_after_its_wait(tmp_path):
    db = tmp_path / "s.db"
    first = RunLock(db)
    first.acquire(0)
    with pytest.raises(StopRun, match=f"another run holds {db}"):
        RunLock(db).acquire(0)
    with pytest.raises(StopRun, match="another run holds"):
        RunLock(db).acquire(0.3)           # waited, still held
    first.release()
    second = RunLock(db)
    second.acquire(0)                      # free again
    second.release()


@pytest.mark.process
def test_a_second_run_on_the_same_state_exits_75_naming_the_file(tmp_path, emu, memq):
    # The lock holder is another process (the kernel's file lock); the refused run is this one.
    cfg = write_config(tmp_path, emu, memq)
    db = tmp_path / "state" / "connector.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom connector.state.sqlite import RunLock\n"
         "RunLock(sys.argv[1]).acquire(0)\nprint('held', flush=True)\ntime.sleep(60)", str(db)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        res = cli("run", "--config", str(cfg), "--drain")
        assert res.returncode == 75, res.stderr
        assert f"another run holds {db}" in res.stderr and "Traceback" not in res.stderr
    finally:
        holder.kill()
        holder.wait()
    # The holder is gone (the kernel drops its lock with it): the next run goes ahead.
    assert cli("run", "--config", str(cfg), "--drain").returncode == 0


def test_the_lock_wait_is_a_state_key_that_survives_loading(tmp_path):
    from connector.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text("sqs: {queue_url: q, region: r, batch_window_seconds: 2.5}\n"
                    "salesforce: {instance_url: 'https://x', auth: {method: access_token, access_token: t}}\n"
                    "state: {path: s.db, lock_wait_seconds: 30}\n", encoding="utf-8")
    cfg = load_config(path)
    assert cfg.state.lock_wait_seconds == 30 and cfg.state.path == tmp_path / "s.db"
    assert cfg.sqs.batch_window_seconds == 2.5
