"""`connector status --check`: a health verdict for schedulers and monitors (the operator contract:
README, Monitoring).

Reads only the state store and SQS (no Salesforce credentials). Each threshold breached is one
line; none breached prints `ok`. Exit 1 on a breach, 0 otherwise.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from connector.config import Config
from connector.console import queue_depths

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `2h`, `1d` (a bare number is seconds); ValueError otherwise."""
    m = _DURATION.match(text or "")
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 30m, 2h or 1d)")
    return timedelta(seconds=float(m.group(1)) * _UNIT_SECONDS[m.group(2) or "s"])


@dataclass
class Thresholds:
    max_quarantined: int = 0
    max_dlq: int = 0
    max_age: timedelta | None = None
    max_budget: float = 0.8


@dataclass
class Breach:
    check: str
    value: Any
    threshold: Any
    message: str


@dataclass
class Verdict:
    breaches: list[Breach] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.breaches

    def lines(self) -> list[str]:
        return [b.message for b in self.breaches] or ["ok"]

    def doc(self) -> dict[str, Any]:
        return {"ok": self.ok, "breaches": [asdict(b) for b in self.breaches], "values": self.values,
                "lines": self.lines()}


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    t = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def last_success(state: Any) -> datetime | None:
    """The newest of: a run that ended with exit 0, a message the connector handled (a service
    that has run for days has no finished run, but handles messages)."""
    times = [_parse_time(r.get("finished_at")) for r in state.recent_runs(50) if r.get("exit_code") == 0]
    times += [_parse_time(s.get("last_message_at")) for s in state.message_stats_by_event().values()]
    found = [t for t in times if t is not None]
    return max(found) if found else None


def check(cfg: Config, state: Any, limits: Thresholds, now: datetime | None = None) -> Verdict:
    now = now or datetime.now(timezone.utc)
    v = Verdict()
    quarantined = len(state.quarantined())
    v.values["quarantined"] = quarantined
    if quarantined > limits.max_quarantined:
        v.breaches.append(Breach("quarantined", quarantined, limits.max_quarantined,
                                 f"quarantined: {quarantined} messages (more than {limits.max_quarantined}); "
                                 "see connector quarantine list"))
    sqs = queue_depths(cfg.sqs)
    if sqs.get("error"):
        v.values["dlq"] = None
        v.breaches.append(Breach("dlq", None, limits.max_dlq,
                                 f"dlq: cannot read the queue's depth ({sqs['error'][:200]})"))
    else:
        dlq = sqs.get("dead_letter_queue")
        depth = (dlq["visible"] + dlq["in_flight"] + dlq["delayed"]) if dlq else 0
        v.values["dlq"] = depth
        if depth > limits.max_dlq:
            v.breaches.append(Breach("dlq", depth, limits.max_dlq,
                                     f"dlq: {depth} messages in the dead-letter queue (more than {limits.max_dlq}): "
                                     f"{dlq['url'] if dlq else ''}"))
    last = last_success(state)
    v.values["last_success"] = last.isoformat() if last else None
    if limits.max_age is not None:
        if last is None:
            v.breaches.append(Breach("age", None, limits.max_age.total_seconds(),
                                     "age: no successful run or handled message yet"))
        elif now - last > limits.max_age:
            age = now - last
            v.breaches.append(Breach("age", round(age.total_seconds()), limits.max_age.total_seconds(),
                                     f"age: last success {_human(age)} ago at {last.isoformat()} "
                                     f"(more than {_human(limits.max_age)})"))
    usage = state.api_usage()
    fraction = usage["used"] / usage["max"] if usage and usage.get("max") else None
    v.values["budget"] = round(fraction, 4) if fraction is not None else None
    if fraction is not None and fraction > limits.max_budget:
        v.breaches.append(Breach("budget", round(fraction, 4), limits.max_budget,
                                 f"budget: {usage['used']:,}/{usage['max']:,} daily API requests used "
                                 f"({fraction:.0%}, more than {limits.max_budget:.0%}) "
                                 f"at {usage['seen_at']}"))
    return v


def _human(d: timedelta) -> str:
    s = int(d.total_seconds())
    if s >= 86400:
        return f"{s / 86400:.1f}d"
    if s >= 3600:
        return f"{s / 3600:.1f}h"
    if s >= 60:
        return f"{s // 60}m"
    return f"{s}s"


# -- the command line: `status --check` (the click options live here so cli.py stays one line) ---
def _duration_option(_ctx: Any, _param: Any, value: str | None) -> timedelta | None:
    import click

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def check_options(fn: Any) -> Any:
    """The `--check` flag and its thresholds (defaults: the operator contract, README, Monitoring)."""
    import click

    options = [
        click.option("--check", is_flag=True, help="A health verdict: one line per breached threshold or "
                     "`ok`; exit 1 when a threshold is breached."),
        click.option("--max-quarantined", type=click.IntRange(min=0), default=0, show_default=True,
                     help="--check: most quarantined messages allowed."),
        click.option("--max-dlq", type=click.IntRange(min=0), default=0, show_default=True,
                     help="--check: most messages allowed in the dead-letter queue."),
        click.option("--max-age", callback=_duration_option, metavar="DURATION",
                     help="--check: the last success may be at most this old (e.g. 30m, 2h, 1d)."),
        click.option("--max-budget", type=click.FloatRange(0, 1), default=0.8, show_default=True,
                     help="--check: the largest fraction of the org's daily API requests used."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def run_check(cfg: Config, state: Any, fmt: str, limits: dict[str, Any]) -> int:
    """Print the verdict (lines, or one JSON document with --format json); the exit status."""
    import json

    import click

    verdict = check(cfg, state, Thresholds(**limits))
    if fmt == "json":
        click.echo(json.dumps(verdict.doc(), ensure_ascii=False, default=str))
    else:
        for line in verdict.lines():
            click.echo(line)
    return 0 if verdict.ok else 1
