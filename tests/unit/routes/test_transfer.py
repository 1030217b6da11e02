"""F9 lanes with fakes: the 转出 checks in their order, the decision's messages to core, the
platform and 我的南京, a refusal naming its field, a redelivery sending the same facts."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest

from config.transfer import TransferSettings
from contracts.channels import TransferDestination
from contracts.errors import BusinessRejected, PartnerTimeout, ValidationFailed
from contracts.ids import make_id_number
from contracts.transfer import (
    CORE_STATUS,
    PLATFORM_STATUS,
    Refusal,
    TransferApplication,
    check_application,
    intake_message,
)
from routes.transfer import intake, intake_failed

ID = make_id_number(random.Random(4), born=date(1982, 4, 4), area="320106")
APP = {"application_no": "ZY2026112000021", "id_number": ID, "name": "李秀英",
       "source_division": "320106", "target_division": "310104", "apply_date": "2026-11-20"}


class Store:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.certs: dict[str, bytes] = {}

    async def receive(self, app: TransferApplication, *, source: str, offline: bool,
                      actor: str, channel_app_id: str = "") -> tuple[dict[str, Any], bool]:
        if app.application_no in self.rows:
            return self.rows[app.application_no], False
        row = {"application_no": app.application_no, "source": source, "offline": offline,
               "channel_app_id": channel_app_id, "status": "received", "reason_code": "",
               "reason_field": "", "reason": "", "received_at": None}
        self.rows[app.application_no] = row
        return row, True

    async def refuse(self, application_no: str, *, source: str, raw: dict[str, Any],
                     refusals: list[Refusal], actor: str) -> tuple[dict[str, Any], bool]:
        row = {"application_no": application_no, "source": source, "offline": False,
               "channel_app_id": "", "status": "refused", "reason_code": "INVALID",
               "reason_field": refusals[0].field, "reason": refusals[0].reason}
        self.rows.setdefault(application_no, row)
        return self.rows[application_no], True

    async def get(self, application_no: str) -> dict[str, Any] | None:
        return self.rows.get(application_no)

    async def set_status(self, application_no: str, status: str, *,
                         expect: tuple[str, ...] = ("received",), reason_code: str = "",
                         reason_field: str = "", reason: str = "") -> bool:
        row = self.rows.get(application_no)
        if row is None or row["status"] not in expect:
            return False
        row.update(status=status, reason_code=reason_code, reason_field=reason_field,
                   reason=reason)
        return True

    async def log(self, *a: Any, **k: Any) -> None:
        pass

    async def save_certificate(self, application_no: str, pdf: bytes) -> str:
        self.certs.setdefault(application_no, pdf)
        return "sha"

    async def certificate(self, application_no: str) -> tuple[bytes, str] | None:
        return None


class Tax:
    def __init__(self, arrears: int = 0) -> None:
        self.arrears = arrears
        self.asked: list[str] = []

    async def query(self, operation: str, req: Any, *, serial: str) -> list[dict[str, str]]:
        self.asked.append(operation)
        return [{"id_number": req.id_number, "arrears": str(self.arrears)}]


class Core:
    def __init__(self, insured: bool = True) -> None:
        self.insured = insured
        self.asked: list[str] = []

    async def check_transfer_destination(self, id_number: str,
                                         division: str) -> TransferDestination:
        self.asked.append(division)
        return TransferDestination(insured=self.insured, pending_business=False)


@dataclass
class Settings:
    transfer: TransferSettings = field(default_factory=lambda: TransferSettings(
        offline_divisions=("5425",)))


@dataclass
class World:
    tax: Tax = field(default_factory=Tax)
    core: Core = field(default_factory=Core)
    transfers: Store = field(default_factory=Store)
    transfer_platform: Any = None
    applications: Any = None
    settings: Settings = field(default_factory=Settings)


def _types(out: Any) -> list[str]:
    return [m.type for m in out.outputs]


async def test_a_ready_transfer_out_asks_tax_then_core_and_tells_both() -> None:
    w = World()
    out = await intake(intake_message(APP, "platform"), w)  # type: ignore[arg-type]
    assert (w.tax.asked, w.core.asked) == (["QueryPersonArrears"], ["310104"])
    assert _types(out) == [CORE_STATUS, PLATFORM_STATUS]
    assert out.outputs[0].payload["status"] == "out_approved"
    again = await intake(intake_message(APP, "platform"), w)  # type: ignore[arg-type]
    assert [m.idempotency_key for m in again.outputs] == [
        m.idempotency_key for m in out.outputs]  # a redelivery: the same facts
    assert w.tax.asked == ["QueryPersonArrears"]  # not asked again


async def test_arrears_refuse_before_the_destination_is_asked() -> None:
    w = World(tax=Tax(arrears=12_000))
    with pytest.raises(BusinessRejected) as e:
        await intake(intake_message(APP, "platform"), w)  # type: ignore[arg-type]
    assert w.core.asked == []
    out = await intake_failed(intake_message(APP, "platform"), e.value, w)  # type: ignore[arg-type]
    assert w.transfers.rows[APP["application_no"]]["status"] == "out_failed"
    status = out.outputs[1].payload
    assert (status["status_code"], status["reason_field"]) == ("12", "id_number")
    assert "120.00" in status["reason"]


async def test_a_refusal_reaches_my_nanjing_naming_the_payload_field() -> None:
    w = World(core=Core(insured=False))
    msg = intake_message(APP | {"application_no": "MN" + "a" * 32}, "my_nanjing",
                         channel_app_id="a" * 32)
    with pytest.raises(BusinessRejected) as e:
        await intake(msg, w)  # type: ignore[arg-type]
    out = await intake_failed(msg, e.value, w)  # type: ignore[arg-type]
    told = next(m for m in out.outputs if m.type == "channel.result.my_nanjing").payload
    assert told["status"] == "rejected" and told["reason_field"] == "payload.target_division"
    assert told["application_id"] == "a" * 32 and told["final"] is True
    assert PLATFORM_STATUS not in _types(out)  # not the platform's own application


async def test_a_bad_application_is_refused_and_a_dead_one_is_failed() -> None:
    w = World()
    bad = intake_message(APP | {"id_number": "x"}, "platform")
    with pytest.raises(ValidationFailed) as e:
        await intake(bad, w)  # type: ignore[arg-type]
    assert e.value.field == "id_number"
    out = await intake_failed(bad, e.value, w)  # type: ignore[arg-type]
    assert w.transfers.rows[APP["application_no"]]["status"] == "refused"
    assert _types(out) == [PLATFORM_STATUS] and out.outputs[0].payload["status_code"] == "91"
    w2 = World()
    msg = intake_message(APP, "window")
    await w2.transfers.receive(check_application(APP), source="window",  # type: ignore[arg-type]
                               offline=False, actor="u")
    out = await intake_failed(msg, PartnerTimeout("tax did not answer"), w2)  # type: ignore[arg-type]
    assert w2.transfers.rows[APP["application_no"]]["status"] == "failed"
    assert _types(out) == [CORE_STATUS]  # a window's failure: core, the caseworker reads it


async def test_an_offline_transfer_gets_a_certificate_and_no_destination_check() -> None:
    w = World()
    out = await intake(intake_message(APP | {"target_division": "542521"}, "window"),
                       w)  # type: ignore[arg-type]
    assert w.core.asked == [] and w.transfers.certs[APP["application_no"]].startswith(b"%PDF")
    assert _types(out) == [CORE_STATUS]  # not the platform: offline
    assert out.outputs[0].payload["status"] == "offline_issued"


async def test_a_transfer_in_is_accepted_without_checks() -> None:
    w = World()
    out = await intake(intake_message(APP | {"source_division": "310104",
                                             "target_division": "320106"}, "platform"),
                       w)  # type: ignore[arg-type]
    assert w.tax.asked == [] and out.outputs[0].payload["status"] == "in_accepted"
