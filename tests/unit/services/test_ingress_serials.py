"""Tax serials (业务流水号, ``ywlsh``) at the door: one limit, refused before anything is kept.

tax.xsd's ``Serial`` is 1-80 of ``A-Za-z0-9_.:-`` (``contracts.envelope.SERIAL_MAX_LENGTH``).
A push or a question whose serial breaks it is a Client fault naming ``ywlsh`` and the
limit, raised by the codec before a message is built or a journal row written; one
within it is carried whole (causation id, interaction log) and never fails a commit. A
FeedbackNotify echoes a serial the hub sent, which is the feedback's correlation id: at
most 64 (``ID_MAX_LENGTH``).
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from adapters.tax import soap
from contracts.employee import TaxFeedback
from contracts.envelope import ID_MAX_LENGTH, SERIAL_MAX_LENGTH, HubMessage
from contracts.errors import ValidationFailed
from services.ingress import CoreAnswer, Ingress, PushReceived
from storage.journal import Journal, LogEntry, TxnUpdate, make_engine
from tests.support.fakes import FakeJournal, FakePublisher
from tests.support.ops import sqlite_url

FIXTURES = Path(__file__).resolve().parents[3] / "contracts" / "fixtures" / "catalogue"
PUSH = (FIXTURES / "AbnormalUnitNotify.xml").read_bytes()
QUESTION = (FIXTURES / "CoreQueryEmployee.xml").read_bytes()
OVER = "S" * (SERIAL_MAX_LENGTH + 1)
AT_LIMIT = "S" * SERIAL_MAX_LENGTH
SEVENTY = "TAX-" + "7" * 66


def _with_serial(body: bytes, serial: str) -> bytes:
    new, n = re.subn(rb"<tax:ywlsh>FIX-\d+</tax:ywlsh>",
                     f"<tax:ywlsh>{serial}</tax:ywlsh>".encode(), body)
    assert n == 1, "the fixture's serial element"
    return new


class FakeCore:
    def __init__(self) -> None:
        self.asked: list[tuple[str, dict[str, Any]]] = []

    async def query(self, infno: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        self.asked.append((infno, params))
        return [{"name": "王建国"}]


def _ingress(journal: Any = None) -> tuple[Ingress, FakePublisher, Any, FakeCore]:
    publisher, core = FakePublisher(), FakeCore()
    journal = journal if journal is not None else FakeJournal()
    return Ingress(publisher=publisher, journal=journal, core=core,  # type: ignore[arg-type]
                   max_body_bytes=100_000, query_timeout_s=1.0), publisher, journal, core


def test_the_limit_is_one_number_in_the_codec_the_envelope_and_the_columns() -> None:
    from storage.models import InteractionLog, PartnerRequest

    assert SERIAL_MAX_LENGTH == 80  # tax.xsd Serial maxLength
    xsd = soap.TAX_XSD.read_text()
    assert f'<xs:maxLength value="{SERIAL_MAX_LENGTH}"/>' in xsd.split(
        '<xs:simpleType name="Serial">')[1].split("</xs:simpleType>")[0]
    assert HubMessage.model_fields["causation_id"].metadata[0].max_length == SERIAL_MAX_LENGTH
    for column in (InteractionLog.message_id, InteractionLog.correlation_id,
                   PartnerRequest.serial):
        assert column.type.length == SERIAL_MAX_LENGTH, column  # type: ignore[attr-defined]


# ---------------------------------------------------------------- the codec


@pytest.mark.parametrize("serial", [OVER, "S" * 500], ids=["81", "500"])
def test_parse_request_refuses_a_serial_over_the_limit_naming_ywlsh_and_the_limit(
        serial: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        soap.parse_request(_with_serial(PUSH, serial), kinds=("push",))
    assert e.value.field == "ywlsh"
    assert e.value.reason == f"ywlsh: must be at most 80 characters, got {len(serial)}"


@pytest.mark.parametrize("serial", ["has space", "中文流水号", "a/b", "x" * 10 + "\u00e9"])
def test_parse_request_refuses_a_serial_of_other_characters(serial: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        soap.parse_request(_with_serial(PUSH, serial), kinds=("push",))
    assert e.value.field == "ywlsh" and "1-80 characters of A-Z a-z 0-9 _ . : -" in e.value.reason


@pytest.mark.parametrize("serial", [SEVENTY, AT_LIMIT, "a"])
def test_parse_request_takes_every_serial_the_schema_allows(serial: str) -> None:
    assert soap.parse_request(_with_serial(PUSH, serial), kinds=("push",))[1] == serial


def test_a_feedback_serial_over_the_id_limit_is_refused_naming_ywlsh() -> None:
    fb = TaxFeedback(accept_no="SL1", biz_msg_id="m1", operation="EmployeeEnroll",
                     status="accepted")
    body = soap.build_feedback_request(fb).replace(
        b"<tax:ywlsh>m1</tax:ywlsh>", f"<tax:ywlsh>{SEVENTY}</tax:ywlsh>".encode())
    with pytest.raises(ValidationFailed) as e:
        soap.parse_feedback_request(body)
    assert e.value.field == "ywlsh"
    assert e.value.reason == f"ywlsh: must be at most {ID_MAX_LENGTH} characters, got 70"


# ---------------------------------------------------------------- the ingress


@pytest.mark.parametrize("body", [PUSH, QUESTION], ids=["push", "question"])
async def test_an_over_long_serial_is_refused_before_anything_is_published_or_asked(
        body: bytes) -> None:
    svc, published, journal, core = _ingress()
    with pytest.raises(ValidationFailed) as e:
        await svc.tax_call(_with_serial(body, OVER))
    assert e.value.field == "ywlsh" and "at most 80" in e.value.reason
    assert published.sent == [] and core.asked == []
    [log] = journal.logs()  # the refusal, journaled without the serial
    assert (log.message_id, log.outcome) == ("-", "rejected") and OVER not in str(log.detail)


async def test_a_feedback_with_a_70_character_serial_is_refused_naming_ywlsh() -> None:
    svc, published, journal, _ = _ingress()
    fb = TaxFeedback(accept_no="SL1", biz_msg_id="m1", operation="EmployeeEnroll",
                     status="accepted")
    body = soap.build_feedback_request(fb).replace(b">m1<", f">{SEVENTY}<".encode())
    with pytest.raises(ValidationFailed) as e:
        await svc.tax_feedback(body)
    assert e.value.field == "ywlsh" and published.sent == []
    assert journal.logs()[0].outcome == "rejected"


async def test_a_push_with_a_70_character_serial_is_published_with_it_whole() -> None:
    """What was a 500 (the envelope's causation id took 64): the schema allows 80."""
    svc, published, journal, _ = _ingress()
    out = await svc.tax_call(_with_serial(PUSH, SEVENTY))
    assert isinstance(out, PushReceived) and published.sent == [out.message]
    assert out.message.causation_id == SEVENTY
    assert journal.logs()[0].detail["serial"] == SEVENTY


async def test_a_question_with_an_80_character_serial_is_answered() -> None:
    svc, _, journal, core = _ingress()
    out = await svc.tax_call(_with_serial(QUESTION, AT_LIMIT))
    assert isinstance(out, CoreAnswer) and out.ok and len(core.asked) == 1
    assert journal.logs()[0].message_id == AT_LIMIT


# ---------------------------------------------------------------- the real journal


@pytest.fixture
async def journal(template_db: Path, tmp_path: Path) -> AsyncIterator[Journal]:
    path = tmp_path / "hub.db"
    shutil.copy(template_db, path)
    j = Journal(make_engine(sqlite_url(path)), flush_ms=30)
    await j.start()
    try:
        yield j
    finally:
        await j.stop()
        await j.engine.dispose()


async def test_an_over_long_serial_never_reaches_the_group_commit(
        journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused pushes and questions ride in the same group as unrelated writers: every
    writer commits, and no committed item carries the over-long serial."""
    committed: list[Any] = []
    commit = journal._commit

    async def spy(batch: Sequence[tuple[Sequence[Any], asyncio.Future[None]]]) -> None:
        await commit(batch)
        committed.extend(item for items, _ in batch for item in items)

    monkeypatch.setattr(journal, "_commit", spy)
    svc, published, _, core = _ingress(journal)
    others = [journal.write(LogEntry(message_id=f"m{i}", correlation_id=f"c{i}",
                                     type="tax.employee.enroll", partner="tax",
                                     direction="out", hop="tax.employee", outcome="ok"),
                            TxnUpdate(f"c{i}", "tax.employee.enroll", f"bk{i}", "core",
                                      "submitted"))
              for i in range(5)]
    results = await asyncio.gather(svc.tax_call(_with_serial(PUSH, OVER)),
                                   svc.tax_call(_with_serial(QUESTION, OVER)),
                                   svc.tax_call(_with_serial(PUSH, SEVENTY)),
                                   *others, return_exceptions=True)
    refused = [r for r in results[:2] if isinstance(r, ValidationFailed)]
    assert [r.field for r in refused] == ["ywlsh", "ywlsh"]
    assert isinstance(results[2], PushReceived)
    assert results[3:] == [None] * 5
    assert len(published.sent) == 1 and core.asked == []
    assert not any(OVER in repr(item) for item in committed)
    logs = [i for i in committed if isinstance(i, LogEntry)]
    assert sorted(log.outcome for log in logs) == ["ok"] * 6 + ["rejected"] * 2
    assert [t.status for t in committed if isinstance(t, TxnUpdate)].count("submitted") == 5
