"""Partner ingress without HTTP: what is published, journaled and refused for core events,
tax feedback, tax pushes and tax's questions to core."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from adapters.tax.soap import build_feedback_request
from contracts.employee import TaxFeedback
from contracts.envelope import entity_key, idempotency_key
from contracts.errors import BusinessRejected, PartnerTimeout, PartnerUnavailable, ValidationFailed
from contracts.messages import ENROLL, FEEDBACK
from contracts.taxcat import model_for, op
from services.ingress import CoreAnswer, Ingress, PushReceived, xml_validation_error
from tests.support.fakes import FakeJournal, FakePublisher

FIXTURES = Path(__file__).resolve().parents[3] / "contracts" / "fixtures"
ENVELOPE = json.loads((FIXTURES / "core/employee_enroll/001_basic_male.input.json").read_text())
ROW = ENVELOPE["input"]["data"]


class FakeCore:
    def __init__(self, answer: list[dict[str, Any]] | Exception | None = None,
                 delay_s: float = 0.0) -> None:
        self.answer = answer if answer is not None else [{"name": "王建国"}]
        self.delay_s = delay_s
        self.asked: list[tuple[str, dict[str, Any]]] = []

    async def query(self, infno: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        self.asked.append((infno, params))
        await asyncio.sleep(self.delay_s)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def ingress(core: FakeCore | None = None, *, timeout_s: float = 1.0
            ) -> tuple[Ingress, FakePublisher, FakeJournal]:
    publisher, journal = FakePublisher(), FakeJournal()
    return Ingress(publisher=publisher, journal=journal,  # type: ignore[arg-type]
                   core=core or FakeCore(), max_body_bytes=100_000,  # type: ignore[arg-type]
                   query_timeout_s=timeout_s), publisher, journal


def event(**over: Any) -> bytes:
    return json.dumps(ENVELOPE | over, ensure_ascii=False).encode()


# ---------------------------------------------------------------- core events

async def test_a_core_event_is_published_then_journaled_as_received() -> None:
    svc, published, journal = ingress()
    out = await svc.core_event(event())
    [msg] = published.sent
    assert out == {"hub_msg_id": msg.message_id, "correlation_id": msg.correlation_id}
    assert (msg.type, msg.source, msg.target, msg.causation_id) == (
        ENROLL, "core", "tax", ENVELOPE["msgid"])
    key = f"{ROW['uscc']}:{ROW['certno']}"
    assert msg.idempotency_key == idempotency_key(ENROLL, key, msg.payload)
    assert msg.entity_key == entity_key("psn", ROW["certno"])
    [txn] = journal.txns()
    assert (txn.correlation_id, txn.status, txn.business_key, txn.only_if_new) == (
        msg.correlation_id, "received", key, True)
    assert journal.logs()[0].hop == "ingress.core" and journal.logs()[0].outcome == "ok"


@pytest.mark.parametrize(("body", "field"), [
    (b"not json", "body"),
    (event(input={"data": ROW | {"certno": "320114198004146871"}}), "certno"),
])
async def test_a_bad_event_is_journaled_as_rejected_and_raised(body: bytes, field: str) -> None:
    svc, published, journal = ingress()
    with pytest.raises(ValidationFailed) as e:
        await svc.core_event(body)
    assert field in e.value.field and not published.sent
    [txn] = journal.txns()
    assert (txn.type, txn.status, txn.reason_code) == ("core.event", "rejected", "VALIDATION")
    assert journal.logs()[0].outcome == "rejected"


async def test_a_batch_publishes_the_good_rows_and_names_the_bad_by_index() -> None:
    svc, published, journal = ingress()
    bad = ROW | {"certno": "320114198004146871"}
    out = await svc.core_event(event(infno="H2107", input={"data": [ROW, bad, ROW]}))
    assert [a["index"] for a in out["accepted"]] == [0, 2]
    [refused] = out["rejected"]
    assert refused["index"] == 1 and refused["errors"][0]["field"] == "certno"
    assert len(published.sent) == 2
    assert [t.status for t in journal.txns()] == ["received", "rejected", "received"]
    assert journal.txns()[1].business_key == f"{ENVELOPE['msgid']}#1"


# ---------------------------------------------------------------- tax

FEEDBACK_IN = TaxFeedback(accept_no="SL1", biz_msg_id="m1", operation="EmployeeEnroll",
                          status="accepted")


async def test_feedback_is_published_for_core() -> None:
    svc, published, _ = ingress()
    msg = await svc.tax_feedback(build_feedback_request(FEEDBACK_IN))
    assert published.sent == [msg]
    assert (msg.type, msg.correlation_id, msg.causation_id) == (FEEDBACK, "m1", "SL1")


async def test_unreadable_feedback_is_journaled_and_raised() -> None:
    svc, published, journal = ingress()
    with pytest.raises(ValidationFailed):
        await svc.tax_feedback(b"<not-soap/>")
    assert not published.sent and journal.logs()[0].outcome == "rejected"


async def test_a_push_is_published_and_journaled() -> None:
    svc, published, journal = ingress()
    body = (FIXTURES / "catalogue/AbnormalUnitNotify.xml").read_bytes()
    serial = re.search(rb"FIX-\d+", body)
    assert serial is not None
    out = await svc.tax_call(body)
    assert isinstance(out, PushReceived) and out.operation == "AbnormalUnitNotify"
    assert published.sent == [out.message]
    assert (out.message.type, out.message.source, out.message.causation_id) == (
        "core.tax_push.abnormal_unit", "tax", serial.group().decode())
    assert journal.txns()[0].status == "received" and journal.txns()[0].source == "tax"


async def test_a_question_for_core_is_answered_not_published() -> None:
    core = FakeCore([{"id_number": "320117197208305970"}])
    svc, published, journal = ingress(core)
    out = await svc.tax_call((FIXTURES / "catalogue/CoreQueryEmployee.xml").read_bytes())
    assert out == CoreAnswer("CoreQueryEmployee", [{"id_number": "320117197208305970"}])
    assert core.asked[0][0] == op("CoreQueryEmployee").core_infno
    assert not published.sent and journal.logs()[0].hop == "ingress.tax_query"


async def test_cores_refusal_is_an_answer_and_its_silence_a_timeout() -> None:
    body = (FIXTURES / "catalogue/CoreQueryEmployee.xml").read_bytes()
    svc, _, _ = ingress(FakeCore(BusinessRejected("E404", "无此人", partner="core")))
    out = await svc.tax_call(body)
    assert out == CoreAnswer("CoreQueryEmployee", [], ok=False, code="E404", text="无此人")
    slow, _, journal = ingress(FakeCore(delay_s=1.0), timeout_s=0.01)
    with pytest.raises(PartnerTimeout, match=r"core did not answer within 0\.01s"):
        await slow.tax_call(body)
    assert not journal.logs()  # only what was answered is journaled
    down, _, _ = ingress(FakeCore(PartnerUnavailable("HTTP 503", partner="core")))
    with pytest.raises(PartnerUnavailable):
        await down.tax_call(body)


async def test_a_bad_call_names_taxs_element_and_is_journaled() -> None:
    body = (FIXTURES / "catalogue/AbnormalUnitNotify.xml").read_bytes().replace(
        b"<tax:bgrq>2026-11-24</tax:bgrq>", b"<tax:bgrq>2026-13-45</tax:bgrq>")
    svc, published, journal = ingress()
    with pytest.raises(ValidationFailed) as e:
        await svc.tax_call(body)
    assert e.value.field == "bgrq" and not published.sent
    assert journal.logs()[0].type == "tax.call" and journal.logs()[0].outcome == "rejected"


def test_xml_validation_errors_use_the_wire_names() -> None:
    o = op("AbnormalUnitNotify")
    model: type[BaseModel] = model_for(o.name)
    with pytest.raises(ValidationError) as e:
        model.model_validate({"unit_credit_code": "x"})
    named = {f for f, _ in xml_validation_error(o, e.value).errors}
    assert "shxydm" in named and "unit_credit_code" not in named
