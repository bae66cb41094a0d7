"""Where `connector import` reads from: an S3 prefix or a local `.jsonl` / `.jsonl.gz` file.

S3 objects are listed, then read in key order (ListObjectsV2 returns keys in UTF-8 binary order:
https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html), and each is streamed
line by line, so memory stays flat whatever the size of an object or of the archive. gzip is
recognised by its magic bytes (1f 8b, RFC 1952), so a `.gz` object Firehose wrote and a plain one
read alike. Amazon Data Firehose writes an SNS subscription's notifications one JSON document per
line ("Formatting Amazon SNS notifications for storage in Amazon S3 destinations",
https://docs.aws.amazon.com/sns/latest/dg/firehose-archived-message-format-S3.html).
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from connector.config import Config

GZIP_MAGIC = b"\x1f\x8b"
# The longest line read whole. SNS publishes at most 256 KiB; an envelope escapes it (quotes,
# \\u sequences) to at most about six times that. Past this a line is cut and quarantined.
MAX_LINE_BYTES = 2 * 1024 * 1024


class SourceError(Exception):
    """The SOURCE cannot be read as given (exit 2): one line naming it and why."""


@dataclass(frozen=True)
class ArchiveObject:
    uri: str                 # s3://bucket/key or file:///path: what the ledger and origins name
    size: int | None = None


@dataclass(frozen=True)
class Line:
    number: int              # 1-based line number in its object
    text: str                # decoded leniently (surrogateescape): the engine names bad UTF-8


class Source(Protocol):
    uri: str

    def objects(self) -> list[ArchiveObject]: ...
    def open(self, obj: ArchiveObject) -> BinaryIO: ...


class _Counting(io.RawIOBase):
    """A raw stream that counts the bytes read from it (progress, before decompression)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n

    def close(self) -> None:
        try:
            self.raw.close()
        finally:
            super().close()


class Reader:
    """One object's lines, streamed; `bytes_read` counts what was taken from the source."""

    def __init__(self, raw: Any) -> None:
        self._counting = _Counting(raw)
        buffered = io.BufferedReader(self._counting, buffer_size=256 * 1024)
        self._stream: Any = gzip.GzipFile(fileobj=buffered) if buffered.peek(2)[:2] == GZIP_MAGIC else buffered

    @property
    def bytes_read(self) -> int:
        return self._counting.count

    def lines(self) -> Iterator[Line]:
        """Non-blank lines; a line too long, or data that cannot be decompressed, becomes a line
        the engine quarantines (with its origin), never a silent loss."""
        number = 0
        try:
            while True:
                raw = self._stream.readline(MAX_LINE_BYTES + 1)
                if not raw:
                    return
                number += 1
                if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                    while (more := self._stream.readline(MAX_LINE_BYTES)) and not more.endswith(b"\n"):
                        pass
                    yield Line(number, f"line longer than {MAX_LINE_BYTES:,} bytes; cut: "
                                       + raw[:200].decode("utf-8", "replace"))
                    continue
                if raw.strip():
                    yield Line(number, raw.rstrip(b"\r\n").decode("utf-8", "surrogateescape"))
        except (OSError, EOFError, zlib.error) as exc:
            # A truncated or corrupt gzip member: what was read stands; the rest is reported.
            yield Line(number + 1, f"archive data unreadable after line {number}: {type(exc).__name__}: {exc}")

    def close(self) -> None:
        self._stream.close()
        self._counting.close()


class LocalFile:
    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise SourceError(f"{path}: no such file (give a .jsonl or .jsonl.gz file, or s3://BUCKET/PREFIX)")
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise SourceError(f"{path}: cannot read it: {exc.strerror or exc}") from None
        self.path = path.resolve()
        self.uri = self.path.as_uri()

    def objects(self) -> list[ArchiveObject]:
        return [ArchiveObject(self.uri, self.path.stat().st_size)]

    def open(self, obj: ArchiveObject) -> BinaryIO:
        return self.path.open("rb")


class S3Prefix:
    def __init__(self, uri: str, cfg: Config) -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        if not bucket:
            raise SourceError(f"{uri}: no bucket (write s3://BUCKET/PREFIX)")
        self.uri, self.bucket, self.prefix = uri, bucket, prefix
        kwargs: dict[str, Any] = {"region_name": cfg.sqs.region,
                                  # botocore's standard retry mode: throttles and 5xx, with back-off.
                                  "config": BotoConfig(retries={"total_max_attempts": 5, "mode": "standard"},
                                                       connect_timeout=10, read_timeout=60)}
        # The archive lives in the connector's account, with its credentials (sqs.access_key_id
        # when set, else boto3's chain); AWS_ENDPOINT_URL_S3 points boto3 at another endpoint.
        if cfg.sqs.access_key_id and cfg.sqs.secret_access_key:
            kwargs["aws_access_key_id"] = cfg.sqs.access_key_id.get_secret_value()
            kwargs["aws_secret_access_key"] = cfg.sqs.secret_access_key.get_secret_value()
        self.client = boto3.client("s3", **kwargs)

    def objects(self) -> list[ArchiveObject]:
        """Every object under the prefix, in key order (the listing itself is a few hundred bytes a key)."""
        out: list[ArchiveObject] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
                out.extend(ArchiveObject(f"s3://{self.bucket}/{o['Key']}", int(o["Size"]))
                           for o in page.get("Contents", []) if not o["Key"].endswith("/"))
        except Exception as exc:  # noqa: BLE001 - boto3 raises many shapes; each is "cannot read SOURCE"
            raise SourceError(f"{self.uri}: cannot list it: {_describe(exc)}") from None
        return sorted(out, key=lambda o: o.uri)

    def open(self, obj: ArchiveObject) -> BinaryIO:
        key = obj.uri.removeprefix(f"s3://{self.bucket}/")
        body: BinaryIO = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]   # a StreamingBody
        return body


def _describe(exc: BaseException) -> str:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'Unknown')}: {err.get('Message', '')}".strip(": ")
    return f"{type(exc).__name__}: {exc}"[:300]


def open_source(spec: str, cfg: Config) -> Source:
    """The SOURCE of `--from`, or SourceError (exit 2)."""
    if spec.startswith("s3://"):
        return S3Prefix(spec, cfg)
    if "://" in spec:
        raise SourceError(f"{spec}: not a source the connector reads (s3://BUCKET/PREFIX or a local .jsonl[.gz] file)")
    return LocalFile(Path(spec))
