"""Every backend failure leaves the store as one StateUnavailable (a StopRun: the service pauses,
`--drain` exits 75) that says what failed and where, and a failed batch leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from connector.errors import StateUnavailable, StopRun
from connector.state import SqliteStateStore, open_state
from connector.state.sql import NOTHING_LOST
from connector.sync.changes import ChangeSet


def _people(n: int) -> dict[str, dict[str, str]]:
    return {f"p{i}": {"sobject": "Lead", "sf_id": f"00Q{i:015d}"} for i in range(n)}


def test_a_store_that_cannot_be_opened_names_its_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StateUnavailable) as err:
        open_state(tmp_path / "file" / "s.db")
    assert isinstance(err.value, StopRun)
    assert str(err.value).startswith(f"cannot open the state store at {tmp_path / 'file' / 's.db'}: ")
    assert err.value.location == str(tmp_path / "file" / "s.db") and err.value.cause


def test_a_failed_read_says_read(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "s.db")
    store.close()
    with pytest.raises(StateUnavailable, match=r"^cannot read the state store at .*s\.db: "):
        store.people(["p1"])
    with pytest.raises(StateUnavailable):
        store.ping()


def test_a_full_disk_says_so_and_that_the_batch_was_not_committed(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "s.db")
    pages = store._query("pragma page_count")[0]["page_count"]
    store._execute(f"pragma max_page_count = {pages}")     # SQLite's own "disk is full" (SQLITE_FULL)
    with pytest.raises(StateUnavailable) as err:
        store.apply(ChangeSet(people=_people(2000), outcomes=[{"message_key": "m1", "outcome": "synced"}]))
    assert str(err.value) == f"the disk holding the state store at {tmp_path / 's.db'} is full; {NOTHING_LOST}"
    assert store.people(["p1"]) == {} and store.outcome_counts() == {}     # all or nothing
    store._execute("pragma max_page_count = 1073741823")
    store.apply(ChangeSet(people=_people(2000)))                             # room again: it goes on
    assert len(store.people(_people(2000))) == 2000


def test_write_errors_of_a_file_size_limit_become_state_unavailable(tmp_path: Path) -> None:
    """`ulimit -f` on a fresh store: preflight's describe cache and a batch fail as StateUnavailable
    (sqlite3's "disk I/O error"), not as a traceback; run in a child, the limit is per process."""
    script = textwrap.dedent("""
        import os, resource, sys
        from connector.errors import StateUnavailable
        from connector.state import open_state
        from connector.sync.changes import ChangeSet
        store = open_state(sys.argv[1])
        limit = os.path.getsize(sys.argv[1]) + 8192
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        big = {"Lead": {"fields": [{"name": "x" * 100, "i": i} for i in range(2000)]}}
        for name, write in [("describes", lambda: store.put_describes(big)),
                            ("apply", lambda: store.apply(
                                ChangeSet(people={f"p{i}": {"sf_id": "00Q"} for i in range(5000)})))]:
            try:
                write()
                print(name, "written")
            except StateUnavailable as exc:
                print(name, exc)
        print("left", len(store.describes()), len(store.people([f"p{i}" for i in range(5000)])))
    """)
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "s.db")], capture_output=True, text=True,
                         timeout=60, check=True).stdout.splitlines()
    where = f"cannot write to the state store at {tmp_path / 's.db'}: disk I/O error"
    assert out[0].startswith(f"describes {where}")
    assert out[1].startswith(f"apply {where}") and out[1].endswith(NOTHING_LOST)
    assert out[2] == "left 0 0"
