"""The archive as a queue, without the engine: lines in key and line order, an object finished
only when every line of it was done, a retry or a stop leaves it unfinished, S3 failing mid-way
stops the run (75) instead of losing lines, and a damaged gzip member becomes a line to quarantine."""

from __future__ import annotations

import gzip
import io

import pytest
from botocore.exceptions import ClientError

from connector.errors import QueueUnavailable
from connector.importer.archive_queue import HOLD_SECONDS, ArchiveQueue
from connector.importer.filters import LineFilter
from connector.importer.source import ArchiveObject, Reader


class Objects:
    """A Source over bytes in memory; `fail` names objects whose GetObject is refused."""

    uri = "mem://archive/"

    def __init__(self, blobs: dict[str, bytes], fail: tuple[str, ...] = ()) -> None:
        self.blobs, self.fail = blobs, fail

    def objects(self) -> list[ArchiveObject]:
        return [ArchiveObject(k, len(v)) for k, v in sorted(self.blobs.items())]

    def open(self, obj: ArchiveObject) -> io.BytesIO:
        if obj.uri in self.fail:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "gone"}}, "GetObject")
        return io.BytesIO(self.blobs[obj.uri])


def _queue(blobs: dict[str, bytes], finished: list, fail: tuple[str, ...] = ()) -> ArchiveQueue:
    src = Objects(blobs, fail)
    return ArchiveQueue(src, src.objects(), LineFilter(), lambda uri, n: finished.append((uri, n)))


def test_lines_come_in_key_order_and_an_object_finishes_when_all_its_lines_are_done():
    finished: list = []
    q = _queue({"b": b"b1\nb2\n", "a": gzip.compress(b"a1\n\na2\n")}, finished)
    got = q.receive(10, 0, HOLD_SECONDS)
    assert [(m.body, m.sqs_message_id) for m in got] == [("a1", "a#L1"), ("a2", "a#L3"), ("b1", "b#L1"), ("b2", "b#L2")]
    assert q.exhausted and finished == []
    q.change_visibility([m.handle for m in got], HOLD_SECONDS)      # the heartbeat: still held
    q.delete([got[0].handle, got[1].handle])
    assert finished == [("a", 2)]
    q.change_visibility([got[2].handle], 30)                        # a retry: b stays unfinished
    q.delete([got[3].handle])
    assert finished == [("a", 2)] and q.counts["objects_unfinished"] == 1


def test_s3_failing_mid_way_stops_the_run_and_names_the_object():
    finished: list = []
    q = _queue({"a": b"a1\n", "b": b"b1\n"}, finished, fail=("b",))
    first = q.receive(1, 0, HOLD_SECONDS)
    q.delete([m.handle for m in first])
    with pytest.raises(QueueUnavailable, match="reading b: ClientError"):
        q.receive(10, 0, HOLD_SECONDS)
    assert not q.exhausted


def test_a_truncated_gzip_member_becomes_a_line_the_engine_quarantines():
    data = gzip.compress(b"".join(b'{"n": %d}\n' % i for i in range(2000)))
    lines = list(Reader(io.BytesIO(data[: len(data) // 2])).lines())
    assert lines[-1].text.startswith(f"archive data unreadable after line {len(lines) - 1}")
    assert all(line.text.startswith('{"n"') for line in lines[:-1])
