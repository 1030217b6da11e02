"""The dead-letter desk without HTTP: edit-and-retry refusals by outcome, viewing is
audited, selections name their audit target (the HTTP side is tests/unit/api)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from broker.topology import Names
from contracts.envelope import HubMessage
from services.audit import Caller
from services.dead_letters import (
    DeadLetterDesk,
    EditRefused,
    EditRetryRequest,
    GroupSelector,
    RetryRequest,
    envelope_errors,
)
from tests.support.ops import ID, Db, RecordingIdem, Sent, letter

OPS = Caller("olga", "operations")


def desk(db: Db, sent: Sent | None = None) -> tuple[DeadLetterDesk, RecordingIdem, Sent]:
    idem, sent = RecordingIdem(), sent or Sent()
    return DeadLetterDesk(store=db.store, audit=db.audit, idem=idem, names=Names("t"),
                          send=sent), idem, sent


def edit(**patch: object) -> EditRetryRequest:
    return EditRetryRequest(patch=patch or {"name": "李四"}, reason="typo in the name")


async def _refused(d: DeadLetterDesk, id: int, body: EditRetryRequest) -> EditRefused:
    with pytest.raises(EditRefused) as e:
        await d.edit_retry(id, body, OPS)
    return e.value


async def test_edit_retry_refusals_are_named_and_audited(db: Db) -> None:
    d, idem, sent = desk(db)
    assert (await _refused(d, 999, edit())).outcome == "not_found"
    archived = await db.store.add(letter(1, status="archived"))
    assert (await _refused(d, archived, edit())).outcome == "conflict"
    broken = await db.store.add(letter(2, body=b"not json"))
    refused = await _refused(d, broken, edit())
    assert (refused.outcome, refused.message) == (
        "invalid", "the body is not a JSON object; archive it")
    rows = await db.audit.list(action="dead_letter.edit_retry")
    assert sorted(r.outcome for r in rows) == ["conflict", "invalid", "not_found"]
    assert all(r.actor == "olga" and r.detail["reason"] == "typo in the name" for r in rows)
    assert not sent.calls and not idem.forgotten


async def test_an_invalid_patched_envelope_names_its_fields_masked(db: Db) -> None:
    d, _, sent = desk(db)
    raw = json.loads(letter(1).body) | {"idempotency_key": 5}
    id = await db.store.add(letter(1, body=json.dumps(raw).encode()))
    refused = await _refused(d, id, edit())
    assert refused.outcome == "invalid"
    assert [e["field"] for e in refused.message] == ["idempotency_key"]
    assert not sent.calls and (await db.store.get(id)).status == "dead"  # type: ignore[union-attr]


async def test_a_failed_send_puts_the_letter_back_to_dead(db: Db) -> None:
    d, idem, _ = desk(db, Sent(fail=True))
    id = await db.store.add(letter(1))
    refused = await _refused(d, id, edit())
    assert refused.outcome == "failed" and "ConnectionError" in refused.message
    assert (await db.store.get(id)).status == "dead"  # type: ignore[union-attr]
    assert idem.forgotten == ["k1"]


async def test_an_edit_is_sent_with_a_new_id_caused_by_the_old(db: Db) -> None:
    d, idem, sent = desk(db)
    id = await db.store.add(letter(1))
    out = await d.edit_retry(id, edit(), OPS)
    [(body, queue, headers)] = sent.calls
    msg = HubMessage.model_validate_json(body)
    assert (msg.message_id, msg.causation_id, msg.payload["name"]) == (out.message_id, "m1",
                                                                      "李四")
    assert queue == Names("t").queue("tax.employee") and headers["x-edited-by"] == "olga"
    assert idem.forgotten == [msg.idempotency_key]


async def test_showing_a_letter_is_audited_and_a_missing_one_is_not(db: Db) -> None:
    d, _, _ = desk(db)
    id = await db.store.add(letter(1))
    assert (await d.show(id, OPS)) is not None and await d.show(999, OPS) is None
    [row] = await db.audit.list(action="dead_letter.view")
    assert (row.actor, row.target) == ("olga", f"id:{id}")


def test_a_selection_names_its_audit_target() -> None:
    assert RetryRequest(ids=list(range(25)), reason="r").target() == \
        "ids:" + ",".join(map(str, range(20))) + ",..."
    group = GroupSelector(reason_code="UNAVAILABLE", partner="tax")
    assert RetryRequest(group=group, reason="r").target() == "group:UNAVAILABLE/tax/*"
    assert RetryRequest(all=True, reason="r").target() == "all"
    with pytest.raises(ValidationError, match="exactly one"):
        RetryRequest(ids=[1], all=True, reason="r")


def test_envelope_errors_name_fields_and_the_envelope_itself() -> None:
    with pytest.raises(ValidationError) as e:
        HubMessage.model_validate({"type": "tax.employee.enroll", "payload": {}})
    assert {x["field"] for x in envelope_errors(e.value)} == {
        "source", "target", "correlation_id", "idempotency_key"}
    with pytest.raises(ValidationError) as e:
        HubMessage.model_validate([ID])
    [error] = envelope_errors(e.value)
    assert error["field"] == "envelope" and ID not in error["error"]
