"""The caseworker's desk for identity confirmations (``services.confirmations``): list
masked, confirm again (a new attempt, a new serial at tax), cancel (core told), refusals,
the audit log, and ``count_cases``; a migrated SQLite store, a recording publisher."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from config.settings import load_settings
from contracts.clock import today_beijing
from contracts.messages import SYNC, operation_message, partner_serial
from contracts.taxcat import op
from kernel.names import QueueNames
from retry.idempotency import MemoryIdempotencyStore
from routes.confirmations import IDENTITY_CONFIRM, confirmation_message
from services.audit import Caller
from services.confirmations import CANCELLED, CaseAction, ConfirmationDesk, count_cases
from services.deps import Deps
from storage.audit import AuditLog
from storage.confirmations import ConfirmationStore, NewCase
from storage.journal import make_engine
from tests.support.fakes import FakePublisher, FakeTax
from tests.support.ops import NAME, PHONE, sqlite_url

ID = "32010219880928997X"
CARL = Caller("carl", "caseworker")


@dataclass
class World:
    desk: ConfirmationDesk
    store: ConfirmationStore
    publisher: FakePublisher
    audit: AuditLog


@pytest.fixture
async def world(template_db: Path, tmp_path: Path) -> AsyncIterator[World]:
    path = tmp_path / "hub.db"
    shutil.copy(template_db, path)
    engine = make_engine(sqlite_url(path))
    store, publisher, audit = ConfirmationStore(engine), FakePublisher(), AuditLog(engine)
    try:
        yield World(ConfirmationDesk(store, publisher, audit), store, publisher, audit)
    finally:
        await engine.dispose()


async def _case(store: ConfirmationStore, cid: str = "corr-1",
                phone: str = PHONE) -> dict[str, object]:
    payload = {"id_number": ID, "name": NAME, "stop_date": today_beijing().isoformat(),
               "reason_code": "01"}
    held = operation_message(op("FlexibleTerminate"), payload, source="core", target="tax",
                             correlation_id=cid)
    case, created = await store.open(NewCase(
        correlation_id=cid, type=held.type, business_key=ID, entity_key=held.entity_key,
        id_number=ID, name=NAME, held_message=held.model_dump_json(), reason_code="TX402",
        reason="身份信息不唯一"))
    assert created
    if phone:
        assert await store.move(str(case["id"]), expect=("open",), status="open", phone=phone,
                                attempts=1, expect_attempts=0)
    return case


async def test_list_masks_personal_data_and_counts(world: World) -> None:
    await _case(world.store)
    page = await world.desk.list()
    assert page["counts"] == {"open": 1, "confirmed": 0, "closed": 0, "cancelled": 0}
    (item,) = page["items"]
    text = repr(page)
    for raw in (ID, NAME, PHONE):
        assert raw not in text
    assert item["id_number"] == "320102********997X" and "held_message" not in item
    assert (await world.desk.list(status="closed"))["items"] == []


async def test_confirm_again_sends_a_new_attempt(world: World) -> None:
    case = await _case(world.store)
    first = confirmation_message(dict(case) | {"phone": PHONE}, PHONE, 1)
    result = await world.desk.act(str(case["id"]), CaseAction(
        action="confirm", reason="citizen came to the counter", phone="13900001111"), CARL)
    assert result.outcome == "ok" and result.case is not None
    (sent,) = world.publisher.published
    assert sent.type == IDENTITY_CONFIRM and sent.payload["phone"] == "13900001111"
    assert sent.correlation_id == case["id"] and result.serial == partner_serial(sent)
    assert partner_serial(sent) != partner_serial(first)  # a new serial at tax
    stored = await world.store.get(str(case["id"]))
    assert stored is not None and (stored["attempts"], stored["actor"]) == (2, "carl")
    [entry] = await world.audit.list(action="identity_confirmation.confirm")
    assert (entry.actor, entry.outcome) == ("carl", "ok")


async def test_confirm_without_any_phone_is_refused(world: World) -> None:
    case = await _case(world.store, phone="")
    result = await world.desk.act(str(case["id"]), CaseAction(action="confirm",
                                                              reason="again"), CARL)
    assert result.outcome == "invalid" and world.publisher.published == []


async def test_cancel_closes_the_case_and_tells_core(world: World) -> None:
    case = await _case(world.store)
    result = await world.desk.act(str(case["id"]), CaseAction(action="cancel",
                                                              reason="重复申请"), CARL)
    assert result.outcome == "ok"
    (note,) = world.publisher.published
    assert note.type == SYNC and note.correlation_id == "corr-1"
    assert (note.payload["status"], note.payload["reason_code"]) == ("rejected", CANCELLED)
    assert "重复申请" in note.payload["reason_text"]
    stored = await world.store.get(str(case["id"]))
    assert stored is not None and stored["status"] == "cancelled" and stored["closed_at"]
    again = await world.desk.act(str(case["id"]), CaseAction(action="confirm",
                                                             reason="oops"), CARL)
    assert again.outcome == "conflict" and len(world.publisher.published) == 1
    refused = await world.audit.list(action="identity_confirmation.confirm")
    assert [e.outcome for e in refused] == ["conflict"]


async def test_an_unknown_case_is_not_found(world: World) -> None:
    result = await world.desk.act("ab" * 16, CaseAction(action="cancel", reason="x"), CARL)
    assert result.outcome == "not_found"


async def test_count_cases(world: World) -> None:
    deps = Deps(settings=load_settings(env={}), tax=FakeTax(), core=None,  # type: ignore[arg-type]
                idem=MemoryIdempotencyStore(), journal=None,  # type: ignore[arg-type]
                publisher=world.publisher, owner="w1", names=QueueNames("t"),
                confirmations=world.store)
    assert (await count_cases(deps))["open"] == 0
    await _case(world.store)
    await _case(world.store, "corr-2")
    assert (await count_cases(deps))["open"] == 2
    assert (await count_cases(Deps(settings=deps.settings, tax=deps.tax, core=deps.core,
                                   idem=deps.idem, journal=deps.journal,
                                   publisher=deps.publisher, owner="w1",
                                   names=deps.names)))["open"] == 0
