"""F13 desk with a real store and fake partners: settle checks in order and stores nothing
before the last; a repeat publishes the same message again; the channels are limited and
masked; core's pushes are all-or-nothing."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from adapters.prescription.crypto import sm2_generate, sm2_verify
from config.voucher import VoucherSettings
from contracts.envelope import HubMessage
from contracts.errors import PartnerUnavailable
from contracts.ids import make_id_number
from contracts.voucher import MEDTAX_TYPE, SETTLE_TYPE, SettlementRequest
from services.voucher import VoucherDesk, VoucherKit
from simulators.voucher import VoucherIssuer
from storage.voucher import VoucherStore
from tests.support.migrations import engine_copy
from tools.demo_voucher import person_record, settlement_body

PRIVATE, PUBLIC = sm2_generate()
RNG = random.Random(9)
ME, OTHER = make_id_number(RNG), make_id_number(RNG)


@dataclass
class FakePartners:
    fail: Exception | None = None
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    async def call(self, partner: str, infno: str, input: dict[str, Any], *,
                   serial: str = "", insuplc_admdvs: str = "320100") -> dict[str, Any]:
        self.calls.append((partner, infno, input))
        if self.fail:
            raise self.fail
        return {"baseinfo": {"certno": ME, "psn_name": "王伟", "balc": "1.00"}}

    async def aclose(self) -> None: ...


@dataclass
class FakeLimiter:
    left: int = 2

    async def hit(self, scope: str, caller: str, limit: int, window_s: int = 60
                  ) -> tuple[bool, int]:
        self.left -= 1
        return self.left >= 0, 17


@dataclass
class FakePublisher:
    sent: list[HubMessage] = field(default_factory=list)

    async def publish(self, msg: HubMessage) -> None:
        self.sent.append(msg)

    async def delay(self, msg: HubMessage, queue: str, delay_ms: int,
                    headers: dict[str, Any]) -> None: ...

    async def park(self, body: bytes, queue: str, headers: dict[str, Any]) -> None: ...

    async def requeue(self, body: bytes, queue: str, headers: dict[str, Any]) -> None: ...


@pytest.fixture
async def desk(template_db: Path, tmp_path: Path) -> AsyncIterator[VoucherDesk]:
    async with engine_copy(template_db, tmp_path) as engine:
        kit = VoucherKit(store=VoucherStore(engine), partners=FakePartners(),
                         limiter=FakeLimiter(),
                         check=lambda m, s: sm2_verify(PUBLIC, m, s),
                         settings=VoucherSettings())
        yield VoucherDesk(kit=kit, publisher=FakePublisher())


ISSUER = VoucherIssuer(PRIVATE, PUBLIC)


def _req(qr: str, no: str = "SETL0001", who: str = ME) -> SettlementRequest:
    return SettlementRequest.model_validate(settlement_body("outpatient", qr, who, "王伟", no))


def _sent(desk: VoucherDesk) -> list[HubMessage]:
    pub = desk.publisher
    assert isinstance(pub, FakePublisher)
    return pub.sent


async def test_settle_new_then_repeat_publishes_one_key_and_a_conflict_is_409(
        desk: VoucherDesk) -> None:
    qr = ISSUER.issue(ME, "王伟")
    a = await desk.settle(_req(qr))
    assert a.status == 202 and a.body["status"] == "queued"
    b = await desk.settle(_req(qr))
    assert b.status == 202 and b.body["repeat"] is True
    sent = _sent(desk)
    assert [m.type for m in sent] == [SETTLE_TYPE] * 2
    assert sent[0].idempotency_key == sent[1].idempotency_key  # one effect downstream
    c = await desk.settle(_req(qr).model_copy(update={"psn_name": "李娜"}))
    assert c.status == 409 and c.body["refused"][0]["field"] == "setl_req_no"
    await desk.kit.store.finish("H32010000011:SETL0001", "done", result={"setl_id": "S1"})
    d = await desk.settle(_req(qr))
    assert d.status == 200 and d.body["status"] == "done" and len(_sent(desk)) == 2


async def test_forged_expired_replayed_and_other_persons_vouchers_store_nothing(
        desk: VoucherDesk) -> None:
    cases = {"forged": _req(ISSUER.forge(ME, "王伟"), "F00001"),
             "expired": _req(ISSUER.issue(ME, "王伟", ttl_s=60, age_s=900), "F00002"),
             "other_person": _req(ISSUER.issue(OTHER, "李娜"), "F00003")}
    for cause, req in cases.items():
        a = await desk.settle(req)
        assert a.status == 422 and a.body["cause"] == cause, a.body
        assert await desk.kit.store.get(f"{req.fixmedins_code}:{req.setl_req_no}") is None
    qr = ISSUER.issue(ME, "王伟")
    assert (await desk.settle(_req(qr, "OK0001"))).status == 202
    a = await desk.settle(_req(qr, "OK0002"))
    assert a.status == 422 and a.body["cause"] == "replayed"
    assert len(_sent(desk)) == 1


async def test_decode_is_masked_unless_full_view_and_core_down_is_503(
        desk: VoucherDesk) -> None:
    qr = ISSUER.issue(ME, "王伟")
    a = await desk.decode(qr, full_view=False)
    assert a.status == 200 and ME not in str(a.body) and "王伟" not in str(a.body)
    assert "*" in a.body["voucher"]["ecToken"]
    b = await desk.decode(qr, full_view=True)
    assert b.body["voucher"]["idNo"] == ME and b.body["person"]["baseinfo"]["certno"] == ME
    partners = desk.kit.partners
    assert isinstance(partners, FakePartners)
    partners.fail = PartnerUnavailable("core down")
    c = await desk.decode(qr, full_view=False)
    assert c.status == 503 and c.body["refused"][0]["field"] == "core"


async def test_channels_are_limited_with_retry_after_and_answers_masked(
        desk: VoucherDesk) -> None:
    assert await desk.limited("kiosk", "K1") is None
    q = await desk.query("person", ME, None)
    assert q.status == 200 and ME not in str(q.body)
    assert await desk.limited("kiosk", "K1") is None
    no = await desk.limited("kiosk", "K1")
    assert no is not None and no.status == 429 and no.headers == {"Retry-After": "17"}


async def test_core_pushes_are_all_or_nothing(desk: VoucherDesk) -> None:
    rng = random.Random(1)
    good = [person_record(rng, ME, "王伟"), person_record(rng, OTHER, "李娜")]
    a = await desk.upload([*good, dict(good[0], gend="9")])
    assert a.status == 422 and a.body["refused"][0]["field"] == "records[2].gend"
    assert _sent(desk) == []
    assert (await desk.upload(good)).body["queued"] == 2
    rec = {"record_no": "MTX0001", "insutype": "510", "certno": ME, "psn_name": "王伟",
           "cashym": "202611", "clct_sumamt": "1.00"}
    b = await desk.medtax([rec, dict(rec, record_no="MTX0002", insutype="392")])
    assert b.status == 422 and [r["field"] for r in b.body["refused"]] == ["records[1].insutype"]
    assert (await desk.medtax([rec])).status == 202
    assert [m.type for m in _sent(desk)][-1] == MEDTAX_TYPE and len(_sent(desk)) == 3
