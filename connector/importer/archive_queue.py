"""An archive as a queue: the Runner consumes archived lines exactly as it consumes SQS.

So every line goes through the one engine (parsing, allow-list, dedupe, stale guards, batching,
the budget): a message already applied is skipped as unchanged at no call, an older one never
overwrites a newer one, a bad one is quarantined with its body. The queue verbs mean:

- receive: the next lines, in object (key) order and line order, streamed; lines the filters
  leave out are counted and never handed over;
- delete: the engine is done with the line (synced, skipped or quarantined, and committed);
- change_visibility with any other time than the hold: the line was not done (a retry, or the
  run stopped): its object is not finished, so the next run reads it again (what was applied
  costs nothing then);
- an object is finished when every line was read and deleted; it is recorded in the state store
  (`put_finished_import`) and a later run under the same scope skips it.

A handle is (object URI, line number); the "SQS message id" of an archived line is its origin,
`<object uri>#L<line>`, stored with its outcome and shown by `connector quarantine show`.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from connector import logs
from connector.errors import QueueUnavailable
from connector.importer.filters import LineFilter
from connector.importer.source import ArchiveObject, Line, Reader, Source
from connector.queue import Failed
from connector.sync.model import Inbound

# The visibility the import's Runner is given: its heartbeat extends held lines by exactly this,
# which the archive takes as "still held"; every other change of visibility means "not done".
HOLD_SECONDS = 43_200


def origin(uri: str, line: int) -> str:
    return f"{uri}#L{line}"


@dataclass
class _ObjectState:
    obj: ArchiveObject
    outstanding: set[int] = field(default_factory=set)
    lines: int = 0
    read_all: bool = False
    failed: bool = False


class ArchiveQueue:
    def __init__(self, source: Source, objects: list[ArchiveObject], line_filter: LineFilter,
                 on_finished: Callable[[str, int], None] | None) -> None:
        self.source = source
        self.filter = line_filter
        self.on_finished = on_finished        # None: a dry run records nothing
        self._todo: Iterator[ArchiveObject] = iter(objects)
        self._open: tuple[_ObjectState, Reader, Iterator[Line]] | None = None
        self._states: dict[str, _ObjectState] = {}
        self._lock = threading.Lock()
        self._bytes_closed = 0
        self._stopped = False
        self._reading = ""                    # the object being opened or read (errors name it)
        self.exhausted = False                # every object was read to its end
        self.counts: Counter[str] = Counter()
        self.log = logs.get()

    # -- what the progress display reads --------------------------------------------------------
    @property
    def bytes_read(self) -> int:
        reader = self._open[1] if self._open else None
        return self._bytes_closed + (reader.bytes_read if reader else 0)

    # -- the Queue protocol ------------------------------------------------------------------
    def receive(self, max_messages: int, wait_seconds: int, visibility_timeout: int) -> list[Inbound]:
        out: list[Inbound] = []
        with self._lock:
            try:
                self._take(out, max_messages)
            except (BotoCoreError, ClientError) as exc:
                # S3 failed while listing was fine (throttled past botocore's retries, the network,
                # an object expired by the lifecycle rule meanwhile): stop; the rerun continues.
                where, self._open = self._reading, None
                raise QueueUnavailable(f"reading {where}: {type(exc).__name__}: {exc}"[:300]) from None
        return out

    def _take(self, out: list[Inbound], max_messages: int) -> None:
        while len(out) < max_messages and not self._stopped:
            if self._open is None and not self._next_object():
                break
            assert self._open is not None
            state, reader, lines = self._open
            line = next(lines, None)
            if line is None:
                self._close_current()
                continue
            self.counts["lines"] += 1
            if not self.filter.keeps(line.text):
                self.counts["filtered_out"] += 1
                continue
            state.outstanding.add(line.number)
            state.lines += 1
            out.append(Inbound(handle=(state.obj.uri, line.number), body=line.text,
                               sqs_message_id=origin(state.obj.uri, line.number)))

    def delete(self, handles: list[Any]) -> list[Failed]:
        with self._lock:
            for uri, number in handles:
                state = self._states.get(uri)
                if state is not None:
                    state.outstanding.discard(number)
                    self._maybe_finished(state)
        return []

    def change_visibility(self, handles: list[Any], seconds: int) -> list[Failed]:
        if seconds == HOLD_SECONDS:
            return []                         # the Runner's heartbeat: still held
        with self._lock:
            for uri, number in handles:
                state = self._states.get(uri)
                if state is not None:
                    state.failed = True       # read again next run
                    state.outstanding.discard(number)
                    self._maybe_finished(state)
        return []

    def max_receive_count(self) -> int | None:
        return None                           # no dead-letter queue: nothing to protect in a dry run

    def interrupt(self) -> None:
        self._stopped = True

    # -- objects ------------------------------------------------------------------------------
    def _next_object(self) -> bool:
        obj = next(self._todo, None)
        if obj is None:
            self.exhausted = True
            return False
        self.counts["objects_opened"] += 1
        self._reading = obj.uri
        reader = Reader(self.source.open(obj))
        state = _ObjectState(obj)
        self._states[obj.uri] = state
        self._open = (state, reader, reader.lines())
        return True

    def _close_current(self) -> None:
        assert self._open is not None
        state, reader, _ = self._open
        self._bytes_closed += reader.bytes_read
        reader.close()
        self._open = None
        state.read_all = True
        self._maybe_finished(state)

    def _maybe_finished(self, state: _ObjectState) -> None:
        if not state.read_all or state.outstanding:
            return
        self._states.pop(state.obj.uri, None)
        if state.failed:
            self.counts["objects_unfinished"] += 1
            return
        self.counts["objects_finished"] += 1
        if self.on_finished is not None:
            self.on_finished(state.obj.uri, state.lines)
        self.log.info("import_object_finished", object=state.obj.uri, messages=state.lines)
