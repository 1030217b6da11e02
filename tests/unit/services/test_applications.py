"""F1 intake without HTTP: what is stored, published and journaled for each outcome, and
the status each refusal carries."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.exc import OperationalError

from config.settings import ChannelConfig
from contracts.channels import TAX_OPERATION, ApplicationRequest
from contracts.envelope import entity_key, new_id
from contracts.messages import APPLICATION
from services.applications import ApplicationIntake, Refused
from storage.applications import payload_hash
from tests.support.fakes import FakeJournal, FakePublisher
from tools.fixtures.generate_channels import REFERENCE_DAY, sample

CHANNELS = {"my_nanjing": ChannelConfig(secret=SecretStr("mn-secret-0123456789")),
            "hrss": ChannelConfig(auth="api-key", secret=SecretStr("hrss-api-key-0123456789"))}


class FakeStore:
    """Applications by (channel, request_id); ``fail`` makes every call a database error."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.fail = False

    def _check(self) -> None:
        if self.fail:
            raise OperationalError("INSERT", {}, Exception("database is locked"))

    async def create(self, channel: str, request_id: str, type: str,
                     payload: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        self._check()
        for row in self.rows.values():
            if (row["channel"], row["request_id"]) == (channel, request_id):
                return dict(row), False
        row = {"id": new_id(), "channel": channel, "request_id": request_id, "type": type,
               "status": "received", "payload_hash": payload_hash(type, payload)}
        self.rows[row["id"]] = row
        return dict(row), True

    async def get(self, app_id: str) -> dict[str, Any] | None:
        self._check()
        return self.rows.get(app_id)

    async def get_for_channel(self, channel: str, app_id: str) -> dict[str, Any] | None:
        row = await self.get(app_id)
        return row if row and row["channel"] == channel else None

    async def set_status(self, app_id: str, status: str) -> bool:
        self._check()
        self.rows[app_id]["status"] = status
        return True


def intake() -> tuple[ApplicationIntake, FakeStore, FakePublisher, FakeJournal]:
    store, publisher, journal = FakeStore(), FakePublisher(), FakeJournal()
    return ApplicationIntake(store=store, publisher=publisher,  # type: ignore[arg-type]
                             journal=journal, channels=CHANNELS,  # type: ignore[arg-type]
                             today=lambda: REFERENCE_DAY), store, publisher, journal


def request(app_type: str = "resident_enroll", **over: Any) -> ApplicationRequest:
    return ApplicationRequest.model_validate(sample(app_type) | over)


async def test_an_application_is_stored_published_once_and_validated() -> None:
    svc, store, published, journal = intake()
    req = request()
    out = await svc.submit("my_nanjing", CHANNELS["my_nanjing"], req)
    assert (out.status, out.duplicate) == ("validated", False)
    [msg] = published.sent
    assert (msg.type, msg.source, msg.correlation_id) == (
        APPLICATION, "channel.my_nanjing", out.application_id)
    assert msg.payload["tax_operation"] == TAX_OPERATION["resident_enroll"]
    assert msg.entity_key == entity_key("psn", req.payload["id_number"])
    assert store.rows[out.application_id]["status"] == "validated"
    [txn] = journal.txns()
    assert (txn.business_key, txn.source) == (f"my_nanjing:{req.request_id}",
                                               "channel.my_nanjing")
    assert journal.logs()[-1].outcome == "ok"


async def test_a_repeat_answers_the_first_and_a_reuse_conflicts() -> None:
    svc, _, published, journal = intake()
    cfg = CHANNELS["my_nanjing"]
    first = await svc.submit("my_nanjing", cfg, request())
    again = await svc.submit("my_nanjing", cfg, request())
    assert (again.application_id, again.status, again.duplicate) == (
        first.application_id, "validated", True)
    assert len(published.sent) == 1 and journal.logs()[-1].outcome == "duplicate"
    other = request("student_enroll", request_id=sample("resident_enroll")["request_id"])
    with pytest.raises(Refused) as e:
        await svc.submit("my_nanjing", cfg, other)
    assert (e.value.status, e.value.code, e.value.app_id) == (409, "CONFLICT",
                                                              first.application_id)


async def test_a_broker_failure_keeps_it_received_for_the_retry() -> None:
    svc, store, published, _ = intake()
    published.error = ConnectionError("broker gone")
    with pytest.raises(Refused) as e:
        await svc.submit("my_nanjing", CHANNELS["my_nanjing"], request())
    assert (e.value.status, e.value.errors[0][0]) == (503, "broker")
    assert store.rows[e.value.app_id or ""]["status"] == "received"
    published.error = None
    retry = await svc.submit("my_nanjing", CHANNELS["my_nanjing"], request())
    assert (retry.application_id, retry.status, retry.duplicate) == (
        e.value.app_id, "validated", False)


@pytest.mark.parametrize(("channel", "app_type", "over", "status", "field"), [
    ("my_nanjing", "retire", {}, 403, "type"),
    ("my_nanjing", "resident_enroll", {"phone": "1234"}, 422, "payload.phone"),
])
async def test_type_and_payload_are_refused_before_anything_is_stored(
        channel: str, app_type: str, over: dict[str, Any], status: int, field: str) -> None:
    svc, store, published, _ = intake()
    doc = sample(app_type)
    req = request(app_type, payload=doc["payload"] | over)
    with pytest.raises(Refused) as e:
        await svc.submit(channel, CHANNELS[channel], req)
    assert e.value.status == status and field in [f for f, _ in e.value.errors]
    assert not store.rows and not published.sent


async def test_a_store_failure_is_503_and_nothing_is_published() -> None:
    svc, store, published, _ = intake()
    store.fail = True
    with pytest.raises(Refused) as e:
        await svc.submit("my_nanjing", CHANNELS["my_nanjing"], request())
    assert (e.value.status, e.value.errors[0][0]) == (503, "store") and not published.sent


async def test_a_journal_failure_does_not_change_the_answer() -> None:
    svc, _, published, journal = intake()
    journal.error = OSError("disk full")
    out = await svc.submit("my_nanjing", CHANNELS["my_nanjing"], request())
    assert out.status == "validated" and len(published.sent) == 1


async def test_find_and_config_refuse_what_is_not_the_channels_own() -> None:
    svc, _, _, journal = intake()
    out = await svc.submit("my_nanjing", CHANNELS["my_nanjing"], request())
    assert (await svc.find("my_nanjing", out.application_id))["id"] == out.application_id
    for channel, app_id in (("hrss", out.application_id), ("my_nanjing", "not-an-id")):
        with pytest.raises(Refused) as e:
            await svc.find(channel, app_id)
        assert (e.value.status, e.value.errors[0][0]) == (404, "application_id")
    with pytest.raises(Refused) as e:
        svc.config("wechat")
    assert (e.value.status, e.value.code) == (404, "UNKNOWN_CHANNEL")
    await svc.refused(e.value, "wechat", "POST")
    entry = journal.logs()[-1]
    assert (entry.outcome, entry.partner, entry.detail["status"]) == ("rejected", "unknown", 404)
    assert e.value.detail() == {"code": "UNKNOWN_CHANNEL", "reason": "channel: no channel "
                                "'wechat'", "errors": [{"field": "channel",
                                                        "reason": "no channel 'wechat'"}]}
