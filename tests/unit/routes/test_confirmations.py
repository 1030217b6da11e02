"""灵活就业终止 held by tax with TX402: the lane side of the identity confirmation
(``routes.confirmations`` through ``routes.tax_submit`` and ``routes.tax_results``), with
a real case store on a migrated SQLite file and fakes for tax and core."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from config.settings import load_settings
from contracts.clock import today_beijing
from contracts.employee import TaxAck, TaxFeedback
from contracts.envelope import HubMessage
from contracts.errors import BusinessRejected, PartnerUnavailable
from contracts.messages import SYNC, operation_message, partner_serial
from contracts.taxcat import op
from kernel.names import QueueNames
from retry.idempotency import MemoryIdempotencyStore
from routes.confirmations import (
    IDENTITY_CONFIRM,
    TERMINATE,
    confirmation_message,
    decide,
    redrive_message,
)
from routes.tax_results import feedback_to_core
from routes.tax_submit import submit_to_tax, tax_failed
from services.deps import Deps
from storage.confirmations import ConfirmationStore, case_id_for, confirm_no_for
from storage.journal import RequestRecord, make_engine
from tests.support.fakes import FakeCore, FakeJournal, FakeTax
from tests.support.ops import NAME, PHONE, sqlite_url

ID = "32010219880928997X"  # synthetic, checksummed (contracts.ids.make_id_number)
NOT_UNIQUE = BusinessRejected("TX402", "身份信息不唯一，请先完成身份确认", partner="tax")


@pytest.fixture
async def store(template_db: Path, tmp_path: Path) -> AsyncIterator[ConfirmationStore]:
    path = tmp_path / "hub.db"
    shutil.copy(template_db, path)
    engine = make_engine(sqlite_url(path))
    try:
        yield ConfirmationStore(engine)
    finally:
        await engine.dispose()


def _deps(store: ConfirmationStore | None, tax: FakeTax, *, phone: str | None = PHONE,
          journal: FakeJournal | None = None) -> Deps:
    core = FakeCore()
    if phone is not None:
        core.records["flexible"] = [{"id_number": ID, "name": NAME, "phone": phone}]
    return Deps(settings=load_settings(env={}), tax=tax, core=core,
                idem=MemoryIdempotencyStore(), journal=journal or FakeJournal(),  # type: ignore[arg-type]
                publisher=None, owner="w1", names=QueueNames("t"),  # type: ignore[arg-type]
                confirmations=store)


def termination(**over: Any) -> HubMessage:
    payload = {"id_number": ID, "name": NAME, "stop_date": today_beijing().isoformat(),
               "reason_code": "01"} | over
    return operation_message(op("FlexibleTerminate"), payload, source="core", target="tax",
                             correlation_id="corr-terminate-1")


def feedback(serial: str, status: str = "accepted", code: str = "",
             text: str = "灵活就业身份确认成功") -> HubMessage:
    fb = TaxFeedback(accept_no="SL1", biz_msg_id=serial, operation="FlexibleIdentityConfirm",
                     id_number=ID, status=status, reason_code=code,  # type: ignore[arg-type]
                     reason_text=text)
    return HubMessage(type="tax.feedback", source="tax", target="core",
                      correlation_id=serial, idempotency_key=f"fb:{serial}:{status}",
                      payload=fb.model_dump(mode="json"))


# ------------------------------------------------------------------ the decision table

@pytest.mark.parametrize(("status", "accepted", "want"), [
    ("open", True, "redrive"), ("open", False, "refuse"),
    ("confirmed", True, "redrive"), ("confirmed", False, "ignore"),
    ("closed", True, "ignore"), ("closed", False, "ignore"),
    ("cancelled", True, "ignore"), ("cancelled", False, "ignore"),
])
def test_decide(status: str, accepted: bool, want: str) -> None:
    assert decide(status, accepted) == want


# ------------------------------------------------------------------ TX402 holds the termination

async def test_tx402_opens_a_case_and_starts_the_confirmation(store: ConfirmationStore) -> None:
    msg = termination()
    out = await submit_to_tax(msg, _deps(store, FakeTax(NOT_UNIQUE)))
    case_id = case_id_for(msg.correlation_id)
    (confirm,) = out.outputs
    assert confirm.type == IDENTITY_CONFIRM and confirm.correlation_id == case_id
    assert confirm.payload == {"id_number": ID, "name": NAME, "phone": PHONE,
                               "confirm_no": confirm_no_for(case_id)}
    assert out.txn is not None and (out.txn.status, out.txn.reason_code) == ("held", "TX402")
    assert out.txn.correlation_id == msg.correlation_id
    assert out.result["outcome"] == "held"
    case = await store.get(case_id)
    assert case is not None and (case["status"], case["attempts"], case["phone"]) == (
        "open", 1, PHONE)
    assert HubMessage.model_validate_json(case["held_message"]) == msg


async def test_a_redelivered_termination_sends_the_same_confirmation(
        store: ConfirmationStore) -> None:
    msg = termination()
    deps = _deps(store, FakeTax(NOT_UNIQUE))
    first = (await submit_to_tax(msg, deps)).outputs[0]
    again = (await submit_to_tax(msg, deps)).outputs[0]
    assert again.idempotency_key == first.idempotency_key
    assert partner_serial(again) == partner_serial(first)
    assert (await store.counts())["open"] == 1


async def test_without_a_phone_the_case_waits_for_a_caseworker(store: ConfirmationStore) -> None:
    msg = termination()
    out = await submit_to_tax(msg, _deps(store, FakeTax(NOT_UNIQUE), phone=None))
    assert out.outputs == () and out.txn is not None and out.txn.status == "held"
    case = await store.get(case_id_for(msg.correlation_id))
    assert case is not None and (case["status"], case["reason_code"]) == ("open", "NO_PHONE")


async def test_other_rejections_and_a_hub_without_cases_reject_as_before(
        store: ConfirmationStore) -> None:
    with pytest.raises(BusinessRejected):
        await submit_to_tax(termination(), _deps(store, FakeTax(
            BusinessRejected("TX303", "无有效参保记录", partner="tax"))))
    with pytest.raises(BusinessRejected):
        await submit_to_tax(termination(), _deps(None, FakeTax(NOT_UNIQUE)))
    assert (await store.counts())["open"] == 0


async def test_the_redriven_termination_refused_again_does_not_loop(
        store: ConfirmationStore) -> None:
    msg = termination()
    deps = _deps(store, FakeTax(NOT_UNIQUE))
    await submit_to_tax(msg, deps)
    case_id = case_id_for(msg.correlation_id)
    assert await store.move(case_id, expect=("open",), status="confirmed")
    case = await store.get(case_id)
    assert case is not None
    redrive = redrive_message(case)
    with pytest.raises(BusinessRejected):
        await submit_to_tax(redrive, deps)
    told = await tax_failed(redrive, NOT_UNIQUE, deps)
    assert told.outputs[0].type == SYNC and told.outputs[0].payload["status"] == "rejected"
    case = await store.get(case_id)
    assert case is not None and (case["status"], case["reason_code"]) == ("open", "TX402")


# ---------------------------------------------------------- tax's answer to the confirmation

async def _held(store: ConfirmationStore) -> tuple[HubMessage, HubMessage, FakeJournal, Deps]:
    """A held termination, its confirmation recorded as submitted to tax."""
    msg = termination()
    journal = FakeJournal()
    deps = _deps(store, FakeTax(NOT_UNIQUE), journal=journal)
    (confirm,) = (await submit_to_tax(msg, deps)).outputs
    serial = partner_serial(confirm)
    journal.requests[serial] = RequestRecord(
        serial=serial, partner="tax", correlation_id=confirm.correlation_id,
        type=IDENTITY_CONFIRM, business_key=ID, entity_key=confirm.entity_key)
    return msg, confirm, journal, deps


async def test_confirmed_redrives_the_termination_once(store: ConfirmationStore) -> None:
    msg, confirm, _, deps = await _held(store)
    out = await feedback_to_core(feedback(partner_serial(confirm)), deps)
    (redrive,) = out.outputs
    assert redrive.type == TERMINATE and redrive.correlation_id == msg.correlation_id
    case_id = case_id_for(msg.correlation_id)
    assert redrive.payload == msg.payload | {"confirm_no": confirm_no_for(case_id)}
    assert out.txn is not None and out.txn.status == "delivered"
    case = await store.get(case_id)
    assert case is not None and case["status"] == "confirmed"
    # a duplicate feedback: the same re-drive (one key, one serial at tax), never another
    again = await feedback_to_core(feedback(partner_serial(confirm)), deps)
    (twice,) = again.outputs
    assert twice.idempotency_key == redrive.idempotency_key
    assert partner_serial(twice) == partner_serial(redrive)


async def test_refused_keeps_the_case_open_and_tells_core(store: ConfirmationStore) -> None:
    msg, confirm, _, deps = await _held(store)
    out = await feedback_to_core(feedback(partner_serial(confirm), "rejected", "TX403",
                                          "身份确认未通过"), deps)
    (note,) = out.outputs
    assert note.type == SYNC and note.correlation_id == msg.correlation_id
    assert (note.payload["status"], note.payload["reason_code"], note.payload["biz_type"]) == (
        "rejected", "TX403", TERMINATE)
    assert out.txn is not None and out.txn.status == "rejected"
    case = await store.get(case_id_for(msg.correlation_id))
    assert case is not None and (case["status"], case["reason_code"], case["reason"]) == (
        "open", "TX403", "身份确认未通过")


async def test_a_confirmation_tax_refuses_at_once_is_a_refusal(store: ConfirmationStore) -> None:
    msg, confirm, _, deps = await _held(store)
    out = await tax_failed(confirm, BusinessRejected("TX403", "身份确认未通过", partner="tax"),
                           deps)
    (note,) = out.outputs
    assert note.correlation_id == msg.correlation_id and note.payload["reason_code"] == "TX403"
    out = await tax_failed(confirm, PartnerUnavailable("HTTP 503", partner="tax"), deps)
    assert out.outputs[0].payload["reason_code"] == "UNAVAILABLE"
    case = await store.get(case_id_for(msg.correlation_id))
    assert case is not None and case["status"] == "open"


async def test_a_late_refusal_after_confirmation_is_ignored(store: ConfirmationStore) -> None:
    msg, confirm, _, deps = await _held(store)
    await feedback_to_core(feedback(partner_serial(confirm)), deps)
    out = await feedback_to_core(feedback(partner_serial(confirm), "rejected", "TX403"), deps)
    assert out.outputs == ()
    case = await store.get(case_id_for(msg.correlation_id))
    assert case is not None and case["status"] == "confirmed"


async def test_the_redriven_terminations_result_closes_the_case(store: ConfirmationStore) -> None:
    msg, confirm, journal, deps = await _held(store)
    (redrive,) = (await feedback_to_core(feedback(partner_serial(confirm)), deps)).outputs
    deps = _deps(store, FakeTax(TaxAck(accept_no="SL2")), journal=journal)
    submitted = await submit_to_tax(redrive, deps)
    (req,) = submitted.requests
    journal.requests[req.serial] = req
    out = await feedback_to_core(feedback(req.serial, text="灵活就业终止参保成功"), deps)
    assert out.outputs[0].type == SYNC and out.outputs[0].payload["status"] == "synced"
    case = await store.get(case_id_for(msg.correlation_id))
    assert case is not None and case["status"] == "closed"


async def test_cores_own_identity_confirmation_goes_to_core_as_before(
        store: ConfirmationStore) -> None:
    own = confirmation_message({"id": "c" * 32, "id_number": ID, "name": NAME,
                                "confirm_no": "QR1"}, PHONE, 1)
    journal = FakeJournal()
    serial = partner_serial(own)
    journal.requests[serial] = RequestRecord(serial=serial, partner="tax",
                                             correlation_id="core-own-1",
                                             type=IDENTITY_CONFIRM, business_key=ID)
    out = await feedback_to_core(feedback(serial), _deps(store, FakeTax(), journal=journal))
    assert out.outputs[0].type == SYNC and out.outputs[0].payload["status"] == "synced"
