"""The three auth methods of the operator contract, against the emulator over HTTPS."""

from __future__ import annotations

import asyncio

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connector.config import SalesforceConfig
from connector.errors import FatalError, SalesforceUnavailable
from connector.wiring import build_gateway


def _cfg(emu, auth: dict) -> SalesforceConfig:
    return SalesforceConfig.model_validate({"instance_url": emu.url, "ca_bundle": emu.ca_path, "auth": auth,
                                            "requests_per_second": 100, "retry_base_seconds": 0.01})


class _Cfg:
    """Just the parts of Config that build_gateway reads."""

    def __init__(self, sf: SalesforceConfig) -> None:
        self.salesforce = sf


def _limits(emu, auth: dict):
    gw = build_gateway(_Cfg(_cfg(emu, auth)))   # type: ignore[arg-type]
    return gw, asyncio.run(gw.limits())


def test_client_credentials(emu):
    gw, limits = _limits(emu, {"method": "client_credentials", "login_url": emu.url,
                               "client_id": emu.client_id, "client_secret": emu.client_secret})
    assert limits["DailyApiRequests"]["Max"] == 100_000 and gw.guard.max == 100_000


def test_jwt_bearer_with_a_private_key_file(emu, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "key.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    _gw, limits = _limits(emu, {"method": "jwt", "login_url": emu.url, "client_id": emu.client_id,
                                "username": "integration@acme.example", "private_key_file": str(pem)})
    assert "DailyApiRequests" in limits


def test_access_token_works_until_it_expires_then_stops_the_run(emu):
    token = emu.issue_token()["access_token"]
    gw, _ = _limits(emu, {"method": "access_token", "access_token": token})
    emu.faults.expire_tokens()
    with pytest.raises(SalesforceUnavailable, match="cannot renew"):
        asyncio.run(gw.limits())


def test_wrong_client_secret_is_fatal_and_does_not_echo_the_secret(emu):
    with pytest.raises(FatalError) as exc:
        _limits(emu, {"method": "client_credentials", "login_url": emu.url,
                      "client_id": emu.client_id, "client_secret": "not-the-secret-42"})
    assert "invalid_client" in str(exc.value) and "not-the-secret-42" not in str(exc.value)
