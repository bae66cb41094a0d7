"""Golden snapshots of every record the default mappings build from sample and hostile messages.

Regenerate after an intended change with ``UPDATE_GOLDEN=1 pytest tests/mapping/test_golden.py``
and review the diff.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from connector.mapping import load_mapping_set

from .helpers import HERE, RESOURCE_TYPES, messages

GOLDEN = HERE / "golden"
REFS = {
    "campaign.id": "701000000000001AAA",
    "session_campaign.id": "701000000000002AAA",
    "person.id": "00Q000000000001AAA",
    "person.lead_id": "00Q000000000001AAA",
    "status": "Registered",
    "categories.names": ["Delegate", "", "VIP"],
    "event.timezone": "Asia/Seoul",
}


def _short(value: Any) -> Any:
    """Long strings are pinned by length, start and end so the golden files stay readable."""
    if isinstance(value, str) and len(value) > 120:
        return f"{value[:30]}…{value[-10:]} [len={len(value)}]"
    if isinstance(value, dict):
        return {k: _short(v) for k, v in value.items()}
    return value


def snapshot(rtype: str) -> dict[str, Any]:
    rm = load_mapping_set(None).for_type(rtype)
    assert rm is not None
    out: dict[str, Any] = {}
    for name, msg in messages(rtype).items():
        entry: dict[str, Any] = {}
        for refs_name, refs in (("refs", REFS), ("no-refs", {})):
            for rec in rm.records():
                key = f"{rec.role} {rec.object} ({refs_name})"
                entry[key] = _short({
                    "applies": rec.applies(msg),
                    "upsert": rec.build(msg, refs, "upsert"),
                    "update": rec.build(msg, refs, "update"),
                    "update, current empty": rec.build(msg, refs, "update", current={}),
                    "update, current filled": rec.build(
                        msg, refs, "update", current={f: "kept" for f in rec.field_names()}),
                    "upsert_value": rec.upsert_value(msg, refs),
                })
        if rm.person is not None:
            entry["person"] = {"jomablue_id": rm.person.jomablue_id(msg),
                               "organisation_uid": rm.person.organisation_uid(msg),
                               "email": rm.person.email(msg)}
        if rm.membership is not None:
            entry["status_for"] = rm.membership.status.status_for(msg)
        if rm.categories is not None:
            entry["categories"] = _short(dict(rm.categories.extract(msg)))
        out[name] = entry
    return out


@pytest.mark.parametrize("rtype", RESOURCE_TYPES)
def test_golden(rtype: str) -> None:
    path = GOLDEN / f"{rtype}.json"
    actual = json.loads(json.dumps(snapshot(rtype), ensure_ascii=False))
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(json.dumps(actual, indent=1, ensure_ascii=False, sort_keys=True) + "\n",
                        encoding="utf-8")
    assert path.exists(), f"missing {path}; run with UPDATE_GOLDEN=1"
    assert actual == json.loads(path.read_text(encoding="utf-8"))
