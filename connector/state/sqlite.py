"""SQLite state store (the embedded default): one file in WAL mode.

The statements both backends share are in :class:`connector.state.sql.SqlStateStore`; this
module binds them to one sqlite3 connection shared by the run loop's threads (a re-entrant lock
serialises them, and a transaction holds it until it commits) and adds what SQLite spells its
own way: ``in (?, ...)`` lists in chunks, the outcome merge, the write journal's merge, sizes
(``dbstat``), and the one-run-per-file :class:`RunLock`.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from connector.errors import StateUnavailable, StopRun
from connector.state import rows as R
from connector.state.base import Row
from connector.state.migrations import apply_migrations
from connector.state.sql import SqlStateStore, unavailable

SQLITE_FULL = 13    # https://www.sqlite.org/rescode.html#full
SQLITE_IOERR = 10   # https://www.sqlite.org/rescode.html#ioerr (extended codes keep it in the low byte)
_COMPACT = (",", ":")  # JSON without spaces
CHUNK = 500         # values per `in (...)`: well under SQLite's host-parameter limit


def _switch_to_wal(conn: sqlite3.Connection, seconds: float = 10.0) -> None:
    """WAL mode, retried: SQLite answers "database is locked" at once, without its busy handler,
    when two connections race to change a new file's journal mode (seen on tmpfs with three
    processes opening one new file together)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _failure(location: str, exc: Exception, action: str) -> StateUnavailable | None:
    if not isinstance(exc, (sqlite3.Error, OSError)):
        return None
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    return unavailable(location, action, exc, disk_full=code == SQLITE_FULL or "disk is full" in str(exc),
                       io_error=code == SQLITE_IOERR or "disk I/O error" in str(exc))


class SqliteStateStore(SqlStateStore):
    """State in one SQLite file (WAL mode), safe to share between the run loop's threads."""

    def __init__(self, path: Path | str) -> None:
        super().__init__()
        path = Path(path)
        self.db_path = path
        self.location = str(path)
        self._lock = threading.RLock()
        try:
            if str(path) != ":memory:":
                path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            # The busy timeout first: switching a new file to WAL takes a lock another process may hold.
            conn.execute("PRAGMA busy_timeout=10000")
            _switch_to_wal(conn)
            conn.execute("PRAGMA synchronous=FULL")
            self.db = sqlite_utils.Database(conn)
            apply_migrations(self.db)
        except (sqlite3.Error, OSError) as exc:
            raise unavailable(self.location, "open", exc) from exc

    def close(self) -> None:
        self.db.conn.close()

    # -- the driver -------------------------------------------------------------------------
    def _failure(self, exc: Exception, action: str) -> StateUnavailable | None:
        return _failure(self.location, exc, action)

    def _fetch(self, q: str, params: Sequence[Any]) -> list[Row]:
        with self._lock:
            cur = self.db.conn.execute(q, params)
            names = [d[0] for d in cur.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def _run(self, q: str, params: Sequence[Any]) -> int:
        with self._lock:
            return self.db.conn.execute(q, params).rowcount

    def _run_many(self, q: str, rows: list[tuple[Any, ...]]) -> None:
        with self._lock:
            self.db.conn.executemany(q, rows)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        # The lock is held until the commit: another thread's statements would join the transaction.
        with self._lock:
            self.db.conn.execute("BEGIN IMMEDIATE")
            try:
                yield
                self.db.conn.execute("COMMIT")
            except BaseException:
                # SQLite has already rolled back after some errors (SQLITE_FULL, SQLITE_IOERR):
                # a second ROLLBACK would fail and hide the error that matters.
                if self.db.conn.in_transaction:
                    self.db.conn.execute("ROLLBACK")
                raise

    def _in(self, values: list[str]) -> Iterator[tuple[str, list[Any]]]:
        for i in range(0, len(values), CHUNK):
            chunk = values[i : i + CHUNK]
            yield f"in ({','.join('?' * len(chunk))})", chunk

    # -- what SQLite does its own way --------------------------------------------------------
    def record_outcomes(self, rows: list[dict[str, Any]]) -> None:
        """Many outcomes at once: one read for attempts/first_seen, one write (one run per file,
        so nothing else writes between them)."""
        if not rows:
            return
        with self.atomic():
            prev = self._rows("messages", "message_key", [r["message_key"] for r in rows])
            cols = R.COLUMNS["messages"]
            self._execute_many(
                f"insert or replace into messages ({', '.join(cols)}) values ({', '.join('?' * len(cols))})",
                [tuple(r[c] for c in cols) for r in R.merge_outcomes(rows, prev, R.now())])

    # -- the write journal, compact (migration 006): field names once per shape -------------------
    def _shapes(self) -> dict[int, tuple[str, list[str]]]:
        """Shape id → (sobject, field names); a handful of rows, read afresh in each call so a
        shape id from a rolled-back transaction is never reused."""
        return {r["id"]: (r["sobject"], json.loads(r["keys"])) for r in self._query(
            "select id, sobject, keys from written_shapes")}

    def written(self, sf_ids: Iterable[str]) -> dict[str, Row]:
        rows = self._rows("written", "sf_id", sf_ids)
        shapes = self._shapes() if rows else {}
        out: dict[str, Row] = {}
        for k, row in rows.items():
            sobject, keys = shapes[row["shape"]]
            out[k] = {"sf_id": k, "sobject": sobject, "fields": dict(zip(keys, R.unpack(row["vals"], len(keys)),
                                                                         strict=True))}
        return out

    def put_written(self, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
        """(sf_id, sobject, fields) per record written: fields merge into what was there (a later
        value wins; None means the field was cleared)."""
        if not rows:
            return
        with self.atomic():
            merged = {k: (row["sobject"], row["fields"]) for k, row in self.written(r[0] for r in rows).items()}
            for sf_id, sobject, fields in rows:
                merged[sf_id] = (sobject, {**merged.get(sf_id, (sobject, {}))[1], **fields})
            ids = {(sobject, json.dumps(keys, ensure_ascii=False, separators=_COMPACT)): i
                   for i, (sobject, keys) in self._shapes().items()}
            for sobject, fields in merged.values():
                key = (sobject, json.dumps(sorted(fields), ensure_ascii=False, separators=_COMPACT))
                if key not in ids:
                    ids[key] = int(self._query("insert into written_shapes (sobject, keys) values (?, ?) returning id",
                                               list(key))[0]["id"])
            self._execute_many(
                "insert or replace into written (sf_id, shape, vals) values (?, ?, ?)",
                [(k, ids[(sobject, json.dumps(sorted(fields), ensure_ascii=False, separators=_COMPACT))],
                  R.pack([fields[f] for f in sorted(fields)])) for k, (sobject, fields) in merged.items()])

    def size_by_kind(self) -> dict[str, int]:
        """Bytes per table, its indexes included (SQLite's dbstat: pages in use)."""
        rows = self._query(
            "select coalesce(m.tbl_name, s.name) as kind, sum(s.pgsize) as n from dbstat s"
            " left join sqlite_master m on m.name = s.name group by kind order by kind")
        return {r["kind"]: int(r["n"]) for r in rows}

    def size_bytes(self) -> int:
        """The database's size on disk (its pages; the WAL is checkpointed into them)."""
        rows = self._query("select page_count * page_size as n from pragma_page_count, pragma_page_size")
        return int(rows[0]["n"])


class RunLock:
    """One `connector run` per SQLite state file: an exclusive flock on `<db>.lock` beside it.

    Two runs on one file would each act on what the other has not committed yet (statuses moving
    backwards, issue 11). The kernel drops a flock when its process dies, however it dies, so
    there is no stale lock to clean up; readers (`status`, reports) never take it. It needs a
    local filesystem (flock is not reliable over NFS).
    """

    def __init__(self, db_path: Path | str) -> None:
        self.db_path = Path(db_path)
        self.path = self.db_path.with_name(self.db_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self, wait_seconds: float = 0) -> None:
        """Take the lock, waiting up to `wait_seconds`; StopRun (exit 75) if another run keeps it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
                    os.close(fd)
                    who = f" (pid {holder})" if holder.isdigit() else ""
                    raise StopRun(f"another run holds {self.db_path}{who}; lock file {self.path}") from None
                time.sleep(min(0.2, left))
        # Who holds it, for the operator reading the refusal; the lock itself is the flock.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

