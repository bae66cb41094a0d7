"""An in-process connector against the bundled emulator: the real engine, state store and gateway."""

from __future__ import annotations

import asyncio
import functools
import json
import shutil
from pathlib import Path
from typing import Any

import yaml
from jbtest import SAMPLES, make_config, sample

from connector.mapping import default_mapping_folder
from connector.sync.model import Inbound, Outcome
from connector.wiring import Wired, wire

EVENT_ID = SAMPLES["person"]["context"]["event_id"]


def person(jid: str, *, email: str | None = "jane.doe@example.com", uid: str | None = "",
           at: str = "2025-09-10T23:04:51.127Z", event_id: str = EVENT_ID, job_title: str | None = None,
           checked_in: bool = False, cancelled: bool = False, **ident: Any) -> dict[str, Any]:
    """A person message (sample-based): registration `jid`; identifiers from keywords."""
    msg = sample("person")
    msg["generated_at"] = at
    msg["context"]["event_id"] = event_id
    msg["identifiers"].update({"id": jid, "email": email, "organisation_uid": uid, **ident})
    msg["data"].update({"checked_in": checked_in, "cancelled": cancelled,
                        "first_check_in": "2025-09-10T23:04:49.880Z" if checked_in else None})
    if job_title is not None:
        msg["data"]["job_title"] = job_title
    return msg


def at(n: int) -> str:
    """A generated_at n minutes into the sample day (later n → newer message)."""
    return f"2025-09-10T{10 + n // 60:02d}:{n % 60:02d}:00.000Z"


@functools.cache
def _default_person_mapping() -> str:
    """The shipped person.yaml parsed once, kept as JSON text so that every caller edits its own copy."""
    return json.dumps(yaml.safe_load((default_mapping_folder() / "person.yaml").read_text(encoding="utf-8")))


def mapping_with(tmp_path: Path, **matching: Any) -> Path:
    """A copy of the default mappings with person.yaml's `matching` section changed."""
    folder = tmp_path / "mappings"
    shutil.copytree(default_mapping_folder(), folder)
    p = folder / "person.yaml"
    doc = json.loads(_default_person_mapping())
    doc["matching"].update(matching)
    p.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return folder


class Connector:
    """One connector process: wired on a state db; `run` processes one batch in one engine call."""

    def __init__(self, emu: Any, state_path: Path, mapping: Path | None = None, dry_run: bool = False) -> None:
        overrides = {"mapping__path": str(mapping)} if mapping is not None else {}
        self.emu = emu
        self.wired: Wired = wire(make_config(emu, state_path, **overrides), dry_run=dry_run)
        self._n = 0

    def inbounds(self, msgs: list[dict[str, Any]]) -> list[Inbound]:
        out = []
        for m in msgs:
            self._n += 1
            out.append(Inbound(handle=self._n, body=json.dumps(m, ensure_ascii=False), sqs_message_id=f"m{self._n}"))
        return out

    def run(self, *msgs: dict[str, Any]) -> list[Outcome]:
        return asyncio.run(self.wired.engine.process(self.inbounds(list(msgs))))

    def person_row(self, jid: str) -> dict[str, Any] | None:
        return self.wired.state.people([jid]).get(jid)

    def close(self) -> None:
        close = getattr(self.wired.state, "close", None)
        if close:
            close()


def synced(outcomes: list[Outcome]) -> list[Outcome]:
    assert all(o.status in ("synced", "skipped") for o in outcomes), [(o.status, o.reason) for o in outcomes]
    return outcomes


def members(emu: Any) -> list[dict[str, Any]]:
    return emu.org.records("CampaignMember")


def ids15(record_id: str) -> str:
    return record_id[:15]
