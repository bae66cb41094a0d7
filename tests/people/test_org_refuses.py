"""A mapping naming a field the org lacks stops the run (exit 2 through the CLI) instead of
quarantining the backlog message after message (issue #9); one odd picklist value does not."""

from __future__ import annotations

import shutil

import pytest

from connector.errors import MappingRejected
from connector.mapping import default_mapping_folder

from .helpers import at, person


def _mapping_with_lead_field(tmp_path, field: str) -> object:
    folder = tmp_path / "mappings"
    shutil.copytree(default_mapping_folder(), folder)
    p = folder / "person.yaml"
    text = p.read_text(encoding="utf-8")
    text = text.replace("      - field: Title\n",
                        f"      - field: {field}\n        value: x\n      - field: Title\n", 1)
    p.write_text(text, encoding="utf-8")
    return folder


def test_a_field_the_org_lacks_stops_the_batch_and_nothing_is_remembered(emu, connector, tmp_path):
    c = connector(mapping=_mapping_with_lead_field(tmp_path, "Favourite_Pet__c"))
    msgs = [person(f"acme/event_person/{n}", at=at(n), email=f"p{n}@example.com") for n in range(1, 4)]
    with pytest.raises(MappingRejected) as err:
        c.run(*msgs)
    [problem] = err.value.problems
    assert "person.yaml:" in problem and "Lead.Favourite_Pet__c" in problem and "INVALID_FIELD" in problem
    assert c.wired.state.quarantined() == []
    assert c.wired.state.people([f"acme/event_person/{n}" for n in range(1, 4)]) == {}
