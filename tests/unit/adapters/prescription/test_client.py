"""PrescriptionClient without a network: keys from settings, the replay memory, HTTP errors
mapped, an unverifiable answer never passed on (the switches over real HTTP are in
tests/integration/adapters/prescription)."""

from __future__ import annotations

import json
import logging
import stat
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.prescription.client import (
    MemoryReplayGuard,
    PrescriptionClient,
    build_prescription_client,
    dev_keys,
    generate_keys,
    prescription_keys,
    with_keys,
)
from config.settings import ConfigError, HubSettings, load_settings
from contracts.errors import BusinessRejected, ClientError, PartnerTimeout, PartnerUnavailable
from contracts.prescription import (
    HospRxDetlQueryIn,
    PrescriptionRefused,
    open_envelope,
    seal,
)

HUB, CENTER = generate_keys("app-1")


def _settings(tmp_path: Path, **env: str) -> HubSettings:
    return load_settings(env={"HUB_PRESCRIPTION__DEV_KEYS_FILE": str(tmp_path / "k.json"),
                              **env})


def test_production_refuses_missing_keys_and_names_each_variable(tmp_path: Path) -> None:
    s = _settings(tmp_path, HUB_ENV="production")
    with pytest.raises(ConfigError) as e:
        prescription_keys(s)
    assert "HUB_PRESCRIPTION__HUB_PRIVATE_KEY" in str(e.value)
    assert "HUB_PRESCRIPTION__CENTER_PUBLIC_KEY" in str(e.value)
    assert not (tmp_path / "k.json").exists()  # nothing generated outside development


def test_development_generates_one_shared_set(tmp_path: Path) -> None:
    s = _settings(tmp_path, HUB_ENV="development")
    first = prescription_keys(s)
    assert prescription_keys(s) == first  # read back, not generated again
    file = tmp_path / "k.json"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    hub, center = dev_keys(file)
    assert hub == first and center.peer_public_key == hub.public_key
    assert center.public_key == hub.peer_public_key


def test_half_configured_keys_are_refused_even_in_development(tmp_path: Path) -> None:
    s = _settings(tmp_path, HUB_ENV="development", HUB_PRESCRIPTION__APP_ID="x")
    with pytest.raises(ConfigError, match="HUB_PRESCRIPTION__SM4_KEY"):
        prescription_keys(s)


def test_configured_keys_are_used_and_a_mismatched_pair_refused(tmp_path: Path) -> None:
    s = _settings(tmp_path, HUB_ENV="production")
    s = s.model_copy(update={"prescription": with_keys(s.prescription, HUB)})
    assert prescription_keys(s) == HUB
    wrong = s.prescription.model_copy(update={"hub_public_key": CENTER.public_key})
    with pytest.raises(ConfigError, match="does not match"):
        prescription_keys(s.model_copy(update={"prescription": wrong}))
    client = build_prescription_client(s)
    assert client._base == "http://127.0.0.1:8120/epc/api/fixmedins"


async def test_memory_replay_guard_remembers_within_ttl_and_stays_bounded() -> None:
    now = [0.0]
    guard = MemoryReplayGuard(size=3, clock=lambda: now[0])
    assert await guard.first_time("a", 10)
    assert not await guard.first_time("a", 10)
    now[0] = 11.0
    assert await guard.first_time("a", 10)  # its window has passed
    for k in ("b", "c", "d"):
        assert await guard.first_time(k, 10)
    assert len(guard._seen) == 3


def _client(handler: Any, **kw: Any) -> PrescriptionClient:
    return PrescriptionClient(endpoint="http://center", keys=HUB, fixmedins_code="P1",
                              transport=httpx.MockTransport(handler), **kw)


def _center(data: dict[str, Any] | None, code: int = 0) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        opened = open_envelope(json.loads(request.content), app_id=CENTER.app_id,
                               app_secret=CENTER.app_secret, crypto=CENTER.crypto(),
                               now_s=int(time.time()), max_skew_s=300, answer=False)
        assert opened.data is not None and opened.data["fixmedinsCode"] == "P1"
        return httpx.Response(200, json=seal(
            data, app_id=CENTER.app_id, app_secret=CENTER.app_secret,
            timestamp=int(time.time()), crypto=CENTER.crypto(), code=code, message="m"))
    return handler


async def test_a_verified_answer_about_another_prescription_is_refused(
        caplog: pytest.LogCaptureFixture) -> None:
    answer = {"hiRxno": "RX-2", "valiEndTime": "2099-01-01 00:00:00", "rxStasCodg": "1",
              "certno": "320106199001011234"}
    c = _client(_center(answer))
    with caplog.at_level(logging.WARNING, logger="hub.prescription"), \
            pytest.raises(PrescriptionRefused) as e:
        await c.query_prescription("RX-1")
    assert e.value.cause == "mismatch" and c.refused == 1
    assert "hospRxDetlQuery answer refused (mismatch)" in caplog.text
    await c.aclose()


async def test_codes_and_http_failures_are_mapped() -> None:
    c = _client(_center(None, code=2001))
    status = await c.query_prescription("RX-1")
    assert (status.found, status.valid, status.reason) == (False, False, "not found")
    with pytest.raises(BusinessRejected, match="9999"):
        await _client(_center(None, code=9999)).detail("RX-1")
    with pytest.raises(PartnerUnavailable):
        await _client(lambda r: httpx.Response(503)).detail("RX-1")
    with pytest.raises(ClientError):
        await _client(lambda r: httpx.Response(404)).detail("RX-1")

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("late", request=request)
    with pytest.raises(PartnerTimeout):
        await _client(slow).detail("RX-1")
    with pytest.raises(PrescriptionRefused, match="not JSON"):
        await _client(lambda r: httpx.Response(200, text="<html>")).detail("RX-1")
    with pytest.raises(ClientError, match="unknown prescription center path"):
        await c.call("nope", HospRxDetlQueryIn(fixmedins_code="P", hi_rxno="R"))
    with pytest.raises(ClientError, match="hi_rxno"):
        await c.detail("bad number!")
    await c.aclose()
