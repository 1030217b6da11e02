"""F13 lane handlers with fake parts: each call carries the message's partner serial and
the 参保地; core's answer finishes the row; a refusal or giving up says which."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from contracts.errors import BusinessRejected, PartnerTimeout
from contracts.ids import make_id_number
from contracts.messages import partner_serial
from contracts.voucher import (
    CORE,
    LIBRARY,
    MEDTAX,
    MedtaxRecord,
    PersonInfo,
    SettlementRequest,
    VoucherClaims,
    medtax_message,
    settle_message,
    upload_message,
)
from routes.voucher import VOUCHER_ROUTES, core_failed, to_core, to_library, to_medtax
from tools.demo_voucher import person_record, settlement_body

ME = make_id_number(random.Random(4))


@dataclass
class Parts:
    calls: list[tuple[str, str, str, str]] = field(default_factory=list)
    finished: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def store(self) -> Parts:
        return self

    @property
    def partners(self) -> Parts:
        return self

    async def call(self, partner: str, infno: str, input: dict[str, Any], *,
                   serial: str = "", insuplc_admdvs: str = "320100") -> dict[str, Any]:
        self.calls.append((partner, infno, serial, insuplc_admdvs))
        return {"setlinfo": {"setl_id": "S1"}}

    async def finish(self, key: str, status: Literal["done", "rejected", "dead"], *,
                     result: dict[str, Any] | None = None, field: str = "",
                     reason: str = "") -> bool:
        self.finished.append((key, status, reason))
        return True

    async def aclose(self) -> None: ...


@dataclass
class Deps:
    voucher: Parts = field(default_factory=Parts)


def _settlement() -> Any:
    claims = VoucherClaims.model_validate({
        "ecToken": "A1B2C3D4E5F60718293A4B5C6D7E8F90", "idNo": ME, "userName": "王伟",
        "insuplcAdmdvs": "510100", "issuedAt": "20261201090000",
        "expireAt": "20261201091000"})
    req = SettlementRequest.model_validate(settlement_body("pharmacy", "x", ME, "王伟",
                                                           "SETL0009"))
    return settle_message(req, claims)


async def test_a_settlement_goes_to_core_with_its_serial_and_finishes_done() -> None:
    deps, msg = Deps(), _settlement()
    out = await to_core(msg, deps)
    assert deps.voucher.calls == [(CORE, "2102", partner_serial(msg), "510100")]
    assert deps.voucher.finished == [("P32010000012:SETL0009", "done", "")]
    assert out.txn is not None and out.txn.status == "delivered"


@pytest.mark.parametrize(("exc", "status"), [
    (BusinessRejected("E201", "就诊信息不存在"), "rejected"), (PartnerTimeout("slow"), "dead")])
async def test_core_refusing_or_giving_up_is_written_on_the_row(exc: Any, status: str) -> None:
    deps = Deps()
    out = await core_failed(_settlement(), exc, deps)
    [(key, got, reason)] = deps.voucher.finished
    assert (key, got) == ("P32010000012:SETL0009", status) and exc.public_text in reason
    assert out.txn is not None and out.txn.status == status


async def test_library_and_medtax_lanes_call_their_partner() -> None:
    deps = Deps()
    person = PersonInfo.model_validate(person_record(random.Random(1), ME, "王伟"))
    await to_library(upload_message(person), deps)
    await to_medtax(medtax_message(MedtaxRecord.model_validate({
        "record_no": "MTX0001", "insutype": "390", "certno": ME, "psn_name": "王伟",
        "cashym": "202611", "clct_sumamt": "1.00"})), deps)
    assert [(c[0], c[1]) for c in deps.voucher.calls] == [(LIBRARY, "V1001"), (MEDTAX, "V3101")]
    assert {r.partner for r in VOUCHER_ROUTES} == {CORE, LIBRARY, MEDTAX}
