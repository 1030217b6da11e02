"""F9 补发 (issue 12): a decided transfer's current status again to the platform and/or
core, salted by the resend id (a retry of it is the same delivery), only where the decision
sends it; 404 unknown, 409 undecided or a target it never goes to; audited, masked."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest

from config.transfer import TransferSettings
from contracts.ids import make_id_number
from contracts.messages import partner_serial
from contracts.transfer import (
    CORE_STATUS,
    PLATFORM_STATUS,
    Refusal,
    TransferApplication,
    core_status_message,
    status_payload,
)
from services.audit import Caller
from services.transfer import TransferDesk
from storage.transfer import TransferStore
from tests.support.fakes import FakeAudit, FakePublisher
from tests.support.migrations import engine_copy

A = Caller("a", "caseworker")
ID = make_id_number(random.Random(9), born=date(1981, 3, 3), area="320104")


def _app(no: str, target: str = "310104") -> TransferApplication:
    return TransferApplication(application_no=no, id_number=ID, name="王建国",
                               source_division="320102", target_division=target,
                               apply_date=date(2026, 11, 20))


@pytest.fixture
async def desk(template_db: Path, tmp_path: Path) -> AsyncIterator[TransferDesk]:
    async with engine_copy(template_db, tmp_path) as engine:
        yield TransferDesk(store=TransferStore(engine), publisher=FakePublisher(),
                           settings=TransferSettings(), audit=FakeAudit())


def _pub(desk: TransferDesk) -> FakePublisher:
    assert isinstance(desk.publisher, FakePublisher)
    return desk.publisher


async def test_a_resend_is_salted_and_its_retry_is_the_same_delivery(
        desk: TransferDesk) -> None:
    await desk.store.receive(_app("ZY2026112000031"), source="platform", offline=False,
                             actor="platform")
    await desk.store.set_status("ZY2026112000031", "out_approved")
    code, got = await desk.resend("ZY2026112000031", reason="平台未收到", actor=A,
                                  resend_id="resend-0001")
    assert code == 200 and got["sent"] == ["platform", "core"], got
    sent = _pub(desk).published
    assert [m.type for m in sent] == [PLATFORM_STATUS, CORE_STATUS]
    assert all(m.payload["status"] == "out_approved" and m.payload["status_code"] == "11"
               and m.payload["resend_id"] == "resend-0001" for m in sent)
    assert sent[1].payload["id_number"] == ID  # core gets the person in full
    # the same resend id again: same keys (same serials); another 补发: new ones
    await desk.resend("ZY2026112000031", reason="平台未收到", actor=A, resend_id="resend-0001")
    assert [m.idempotency_key for m in sent[2:]] == [m.idempotency_key for m in sent[:2]]
    code, other = await desk.resend("ZY2026112000031", reason="again", actor=A,
                                    targets=("core",))
    assert code == 200 and other["sent"] == ["core"] and other["resend_id"]
    assert sent[-1].type == CORE_STATUS
    assert partner_serial(sent[-1]) != partner_serial(sent[1])
    # the decision's own message (unsalted) has yet another key: a 补发 is a new delivery
    first = core_status_message(status_payload(_app("ZY2026112000031").as_dict(),
                                               "out_approved", source="platform"))
    assert first.idempotency_key not in {m.idempotency_key for m in sent}
    events = await desk.store.events("ZY2026112000031")
    assert sum(e["kind"] == "resend" for e in events) == 3
    rows = [r for r in desk.audit.rows if r[2] == "transfer.resend"]  # type: ignore[union-attr]
    assert [r[5] for r in rows] == ["accepted"] * 3
    assert rows[0][4]["targets"] == ["platform", "core"] and rows[0][4]["resend_id"] == \
        "resend-0001"


async def test_unknown_undecided_and_targets_it_never_goes_to_are_refused(
        desk: TransferDesk) -> None:
    code, got = await desk.resend("ZY2026112000099", reason="r", actor=A)
    assert code == 404 and got["refused"][0]["field"] == "application_no"
    await desk.store.receive(_app("ZY2026112000032"), source="platform", offline=False,
                             actor="platform")
    code, got = await desk.resend("ZY2026112000032", reason="r", actor=A)
    assert code == 409 and "not decided" in got["refused"][0]["reason"]
    # a window 转出 to a 未联网地区: offline, core only; the platform is refused by name
    await desk.store.receive(_app("CK2026112000A1", "542521"), source="window", offline=True,
                             actor="a")
    await desk.store.set_status("CK2026112000A1", "offline_issued")
    code, got = await desk.resend("CK2026112000A1", reason="r", actor=A,
                                  targets=("platform",))
    assert code == 409 and got["refused"][0]["field"] == "targets"
    assert "offline" in got["refused"][0]["reason"]
    code, got = await desk.resend("CK2026112000A1", reason="r", actor=A)
    assert code == 200 and got["sent"] == ["core"]
    # a window 转出 that failed (arrears): core heard it, the platform never had it
    await desk.store.receive(_app("CK2026112000A2"), source="window", offline=False, actor="a")
    await desk.store.set_status("CK2026112000A2", "out_failed", reason_code="ARREARS",
                                reason_field="id_number", reason="欠费 88.00")
    code, got = await desk.resend("CK2026112000A2", reason="r", actor=A,
                                  targets=("platform", "core"))
    assert code == 409 and "never sent to the platform" in got["refused"][0]["reason"]
    # a platform application refused as bad (kept masked): the platform only, never core
    await desk.store.refuse("ZY2026112000033", source="platform", raw={
        "application_no": "ZY2026112000033", "id_number": ID, "name": "王建国"},
        refusals=[Refusal("id_number", "bad check character")], actor="platform")
    code, got = await desk.resend("ZY2026112000033", reason="r", actor=A)
    assert code == 200 and got["sent"] == ["platform"], got
    assert _pub(desk).published[-1].payload["reason_field"] == "id_number"
    code, got = await desk.resend("ZY2026112000033", reason="r", actor=A, targets=("core",))
    assert code == 409 and "core never heard" in got["refused"][0]["reason"]
    assert len(_pub(desk).published) == 2  # nothing half-sent by a refused 补发
    outcomes = [r[5] for r in desk.audit.rows if r[2] == "transfer.resend"]  # type: ignore[union-attr]
    assert outcomes == ["not_found", "conflict", "conflict", "accepted", "conflict",
                        "accepted", "conflict"]
    assert ID not in str(desk.audit.rows)  # type: ignore[union-attr]
