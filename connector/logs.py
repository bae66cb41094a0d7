"""Structured logs: JSON lines on stderr when it is not a terminal, readable text when it is.

One line per message outcome and one summary line per run. Payloads, tokens and secrets are
never passed to the logger; :func:`scrub` is a last line of defence for values that look secret.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRETISH = re.compile(r"(secret|token|password|authorization|assertion|private_key)", re.I)


def scrub(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for k in list(event):
        if _SECRETISH.search(k):
            event[k] = "***"
    return event


_redactor: Any = None


def set_redactor(redactor: Any) -> None:
    """From now on every string in a log line has its emails replaced (`logging.redact_personal_data`)."""
    global _redactor
    _redactor = redactor if redactor is not None and redactor.enabled else None


def _redact_value(value: Any, key: str) -> Any:
    if isinstance(value, str):
        return _redactor.field(key, value)
    if isinstance(value, dict):
        return {k: _redact_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(v, key) for v in value]
    return value


def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if _redactor is not None:
        for k in list(event):
            if k not in ("timestamp", "level"):
                event[k] = _redact_value(event[k], k)
    return event


def configure(json_logs: bool | None = None, level: int = logging.INFO) -> None:
    if json_logs is None:
        json_logs = not sys.stderr.isatty()
    # JSON: a traceback (log.exception) becomes the "exception" text of the same line.
    tail: list[Any] = ([structlog.processors.format_exc_info, structlog.processors.JSONRenderer(ensure_ascii=False)]
                       if json_logs else [structlog.dev.ConsoleRenderer(colors=False)])
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            scrub,
            redact,
            *tail,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Library chatter (werkzeug from moto, urllib3 retries) stays out of the operator's log.
    for name in ("werkzeug", "urllib3", "botocore", "moto"):
        logging.getLogger(name).setLevel(logging.ERROR)


def get() -> Any:
    return structlog.get_logger("connector")
