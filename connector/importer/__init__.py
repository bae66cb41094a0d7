"""`connector import` (issue 20): an SNS archive in S3 (Amazon Data Firehose) or a local export,
run through the same engine as the queue. source.py reads, filters.py chooses, archive_queue.py
makes the archive a queue the Runner consumes, command.py is the command."""

from connector.importer.command import ImportOptions, run_import

__all__ = ["ImportOptions", "run_import"]
