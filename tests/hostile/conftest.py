"""An in-process connector (the real engine, state store and gateway against the emulator) whose
`sqs` section can be set, for the allow-list and raw-delivery cases."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from connector.config import Config
from connector.sync.model import Inbound, Outcome
from connector.wiring import Wired, wire


class Engine:
    def __init__(self, emu: Any, state_path: Path, **sqs: Any) -> None:
        cfg: dict[str, Any] = {
            "sqs": {"queue_url": "mem://q", "region": "us-east-1", "wait_seconds": 0, **sqs},
            "salesforce": {
                "instance_url": emu.url, "ca_bundle": emu.ca_path,
                "auth": {"method": "client_credentials", "login_url": emu.url,
                         "client_id": emu.client_id, "client_secret": emu.client_secret},
                "requests_per_second": 1000, "max_in_flight": 4, "retry_base_seconds": 0.01,
                "retry_max_wait_seconds": 0.1,
            },
            "state": {"path": str(state_path)},
        }
        self.wired: Wired = wire(Config.model_validate(cfg))
        self._n = 0

    def run(self, *bodies: str) -> list[Outcome]:
        """One engine call on one batch of raw queue bodies; one outcome per body, in order."""
        inbounds = []
        for body in bodies:
            self._n += 1
            inbounds.append(Inbound(handle=self._n, body=body, sqs_message_id=f"sqs-{self._n}"))
        outcomes = asyncio.run(self.wired.engine.process(inbounds))
        assert len(outcomes) == len(bodies)
        return outcomes

    def close(self) -> None:
        close = getattr(self.wired.state, "close", None)
        if close:
            close()


@pytest.fixture
def engine(emu, tmp_path):
    made: list[Engine] = []

    def make(name: str = "state.db", **sqs: Any) -> Engine:
        e = Engine(emu, tmp_path / name, **sqs)
        made.append(e)
        return e

    yield make
    for e in made:
        e.close()


@pytest.fixture
def engine_once(engine):
    """One engine (and state db) shared by every example of a property test."""
    return engine("property.db")
