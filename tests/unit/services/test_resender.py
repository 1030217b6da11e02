"""One audited resend, and the parts of a bulk job, without HTTP or a database."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.employee import EmployeeEnrollment, ResendRequest
from contracts.errors import BusinessRejected, PartnerUnavailable
from contracts.ids import make_credit_code
from contracts.messages import ENROLL
from contracts.resend import RecordResendRequest
from services.audit import Caller
from services.resend_jobs import KIND, MAX_RUNNING_JOBS, BulkResendRequest, Busy, ResendJobs
from services.resend_targets import Target
from services.resender import ANONYMOUS, Resender, error_detail, masked_target
from tests.support.fakes import FakeAudit, FakeJournal, FakePublisher
from tests.unit.services.test_resend import person

WHO = Caller("li.si", "caseworker")


class FakeCore:
    def __init__(self, *persons: EmployeeEnrollment, error: Exception | None = None) -> None:
        self.persons = {p.business_key: p for p in persons}
        self.error = error

    async def get_employee(self, id_number: str, unit_credit_code: str
                           ) -> EmployeeEnrollment | None:
        if self.error:
            raise self.error
        return self.persons.get(f"{unit_credit_code}:{id_number}")


class FailingAudit:
    async def record(self, *_: Any) -> int:
        raise OSError("audit database gone")


def resender(core: FakeCore, audit: Any = None) -> tuple[Resender, FakePublisher, FakeJournal]:
    publisher, journal = FakePublisher(), FakeJournal()
    return Resender(core=core, publisher=publisher, journal=journal,  # type: ignore[arg-type]
                    audit=audit), publisher, journal


def ask(p: EmployeeEnrollment) -> ResendRequest:
    return ResendRequest(id_number=p.id_number, unit_credit_code=p.unit_credit_code,
                         action="enroll", reason="税务未收到参保信息")


async def test_a_resend_is_published_journaled_and_audited() -> None:
    p, audit = person(), FakeAudit()
    svc, published, journal = resender(FakeCore(p), audit)
    out = await svc.resend(ask(p), WHO, resend_id="r1")
    assert published.sent == [out.message] and out.resend_id == "r1"
    assert (out.message.type, out.message.causation_id) == (ENROLL, "r1")
    [txn] = journal.txns()
    assert (txn.business_key, txn.source, txn.status) == (p.business_key, "resend", "received")
    assert journal.logs()[0].detail["actor"] == "li.si"
    [row] = audit.rows
    assert row[:3] == ("li.si", "caseworker", "resend.employee.enroll")
    assert row[3] == masked_target(p.business_key) and p.id_number not in row[3]
    assert row[5] == "accepted"


@pytest.mark.parametrize(("core", "outcome"), [
    (FakeCore(), "rejected"),  # not in core
    (FakeCore(error=PartnerUnavailable("HTTP 503", partner="core")), "failed"),
])
async def test_a_refused_resend_is_audited_then_raised(core: FakeCore, outcome: str) -> None:
    audit = FakeAudit()
    svc, published, journal = resender(core, audit)
    with pytest.raises((BusinessRejected, PartnerUnavailable)):
        await svc.resend(ask(person()), WHO)
    assert not published.sent and not journal.txns()
    assert audit.rows[0][5] == outcome and "code" in audit.rows[0][4]


async def test_a_broker_failure_is_audited_and_raised_as_it_is() -> None:
    p, audit = person(), FakeAudit()
    svc, published, _ = resender(FakeCore(p), audit)
    published.error = ConnectionError("broker gone")
    with pytest.raises(ConnectionError):
        await svc.resend(ask(p), ANONYMOUS)
    assert audit.rows[0][0] == "anonymous" and audit.rows[0][4]["error"] == "ConnectionError"


async def test_a_failing_audit_does_not_undo_the_resend() -> None:
    p = person()
    svc, published, _ = resender(FakeCore(p), FailingAudit())
    await svc.resend(ask(p), WHO)
    assert len(published.sent) == 1


def test_error_detail_tells_the_partners_own_code() -> None:
    assert error_detail(BusinessRejected("NOT_IN_CORE", "no such person")) == {
        "code": "NOT_IN_CORE", "reason": "[NOT_IN_CORE] no such person"}


# ---------------------------------------------------------------- bulk parts

def bulk(**over: Any) -> BulkResendRequest:
    return BulkResendRequest.model_validate(
        {"filter": {"status": "dead"}, "action": "enroll", "reason": "批量补发"} | over)


def test_a_bulk_item_is_the_one_record_request_of_its_target() -> None:
    p = person()
    item = bulk().item(Target("c1", ENROLL, p.business_key))
    assert isinstance(item, ResendRequest) and item.business_key == p.business_key
    unit = make_credit_code(random.Random(7))
    record = bulk(subject="unit", action="update").item(Target("c2", "tax.unit.update", unit))
    assert isinstance(record, RecordResendRequest) and record.key == unit
    stop = bulk(action="stop", stop_date=date(2025, 6, 30).isoformat())
    assert stop.item(Target("c3", ENROLL, p.business_key)).stop_date == date(2025, 6, 30)
    with pytest.raises(ValidationError):
        bulk().item(Target("c4", ENROLL, "garbage-key"))


def test_a_bulk_request_checks_its_subjects_rules() -> None:
    with pytest.raises(ValidationError, match="enroll or stop"):
        bulk(action="update")
    with pytest.raises(ValidationError, match=r"filter\.type"):
        bulk(filter={"status": "dead", "type": "tax.unit.update"})


async def test_more_than_the_running_limit_is_busy() -> None:
    jobs = ResendJobs()
    for i in range(MAX_RUNNING_JOBS):  # queued or running, in any process: rows of the kind
        await jobs.runner.list()
        await jobs.runner.store.insert(id=f"j{i}", kind=KIND, started_by="x",
                                       role="caseworker", params={}, resume={})
    svc, _, _ = resender(FakeCore())
    with pytest.raises(Busy, match=f"{MAX_RUNNING_JOBS} resend jobs are running"):
        await jobs.start(bulk(), WHO, resender=svc, engine=None)  # type: ignore[arg-type]
    assert await jobs.runner.get("j0") is not None and await jobs.get("nope") is None
    await jobs.aclose()
