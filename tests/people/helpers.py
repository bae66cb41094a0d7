"""An in-process connector against the bundled emulator: the real engine, state store and gateway."""

from __future__ import annotations

import asyncio
import copy
import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from connector.config import Config
from connector.mapping import default_mapping_folder
from connector.sync.model import Inbound, Outcome
from connector.wiring import Wired, wire

FIXTURES = Path(__file__).parent.parent / "fixtures"
SAMPLES = json.loads((FIXTURES / "jomablue-samples.json").read_text(encoding="utf-8"))
EVENT_ID = SAMPLES["person"]["context"]["event_id"]


def person(jid: str, *, email: str | None = "jane.doe@example.com", uid: str | None = "",
           at: str = "2025-09-10T23:04:51.127Z", event_id: str = EVENT_ID, job_title: str | None = None,
           checked_in: bool = False, cancelled: bool = False, **ident: Any) -> dict[str, Any]:
    """A person message (sample-based): registration `jid`; identifiers from keywords."""
    msg = copy.deepcopy(SAMPLES["person"])
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


def mapping_with(tmp_path: Path, **matching: Any) -> Path:
    """A copy of the default mappings with person.yaml's `matching` section changed."""
    folder = tmp_path / "mappings"
    shutil.copytree(default_mapping_folder(), folder)
    p = folder / "person.yaml"
    doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    doc["matching"].update(matching)
    p.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return folder


class Connector:
    """One connector process: wired on a state db; `run` processes one batch in one engine call."""

    def __init__(self, emu: Any, state_path: Path, mapping: Path | None = None, dry_run: bool = False) -> None:
        cfg: dict[str, Any] = {
            "sqs": {"queue_url": "mem://q", "region": "us-east-1", "wait_seconds": 0},
            "salesforce": {
                "instance_url": emu.url, "ca_bundle": emu.ca_path,
                "auth": {"method": "client_credentials", "login_url": emu.url,
                         "client_id": emu.client_id, "client_secret": emu.client_secret},
                "requests_per_second": 1000, "max_in_flight": 4, "retry_base_seconds": 0.01,
                "retry_max_wait_seconds": 0.1,
            },
            "state": {"path": str(state_path)},
        }
        if mapping is not None:
            cfg["mapping"] = {"path": str(mapping)}
        self.emu = emu
        self.wired: Wired = wire(Config.model_validate(cfg), dry_run=dry_run)
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
