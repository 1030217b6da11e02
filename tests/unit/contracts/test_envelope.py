"""The canonical envelope: content-derived idempotency keys, causation chain, headers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.employee import SyncStatusUpdate
from contracts.envelope import (
    HEADER_ATTEMPT,
    HEADER_CAUSATION,
    HEADER_ENTITY,
    HEADER_IDEMPOTENCY,
    HEADER_SOURCE,
    HEADER_TARGET,
    HubMessage,
    canonical_json,
    idempotency_key,
    new_id,
)
from contracts.messages import operation_message, sync_message
from contracts.taxcat import op

PAYLOAD = {"id_number": "320102199005170017", "wage": 5000, "nested": {"b": 1, "a": [1, 2]}}


def _msg(**over: Any) -> HubMessage:
    base: dict[str, Any] = {
        "type": "tax.employee.enroll", "source": "core", "target": "tax",
        "correlation_id": "corr-1", "entity_key": "person-1",
        "idempotency_key": idempotency_key("tax.employee.enroll", "bk", PAYLOAD),
        "payload": PAYLOAD,
    }
    return HubMessage(**(base | over))


def test_canonical_json_is_sorted_and_compact() -> None:
    assert canonical_json({"b": 1, "a": {"d": "南京", "c": None}}) == \
        '{"a":{"c":null,"d":"南京"},"b":1}'


def test_key_is_stable_for_the_same_content() -> None:
    reordered = {"nested": {"a": [1, 2], "b": 1}, "wage": 5000, "id_number": PAYLOAD["id_number"]}
    k1 = idempotency_key("tax.employee.enroll", "bk", PAYLOAD)
    k2 = idempotency_key("tax.employee.enroll", "bk", reordered)
    assert k1 == k2
    assert k1.startswith("tax.employee.enroll:")
    assert len(k1.split(":", 1)[1]) == 32


@pytest.mark.parametrize("change", [
    {"type_": "tax.employee.stop"},
    {"business_key": "other"},
    {"payload": PAYLOAD | {"wage": 5001}},
    {"payload": PAYLOAD | {"nested": {"b": 1, "a": [2, 1]}}},  # list order matters
    {"salt": "resend-1"},
])
def test_key_changes_with_meaning_or_salt(change: dict[str, Any]) -> None:
    args: dict[str, Any] = {"type_": "tax.employee.enroll", "business_key": "bk",
                            "payload": PAYLOAD, "salt": ""}
    assert idempotency_key(**(args | change)) != idempotency_key(**args)


def test_different_salts_give_different_keys() -> None:
    keys = {idempotency_key("a.b", "bk", {}, salt=s) for s in ("", "r1", "r2")}
    assert len(keys) == 3


def test_defaults() -> None:
    m = _msg()
    assert len(m.message_id) == 32
    assert m.attempt == 0
    assert m.causation_id is None
    assert m.created_at.tzinfo is not None
    assert new_id() != new_id()


def test_a_result_message_keeps_correlation_and_sets_causation() -> None:
    parent = _msg()
    update = SyncStatusUpdate(correlation_id=parent.correlation_id, biz_type="x.y",
                              business_key="bk", status="synced")
    child = sync_message(update, cause=parent, entity_key=parent.entity_key)
    payload = update.model_dump(mode="json")
    assert child.correlation_id == parent.correlation_id
    assert child.causation_id == parent.message_id
    assert child.entity_key == parent.entity_key
    assert child.message_id != parent.message_id
    assert child.attempt == 0
    assert (child.type, child.source, child.target, child.payload) == \
        ("core.sync_status", "hub", "core", payload)
    assert child.idempotency_key == idempotency_key("core.sync_status", "bk", payload)


def test_a_salted_operation_message_is_a_new_fact() -> None:
    o = op("UnitEnroll")
    payload = {"unit_credit_code": "91320100MA1XXXXX0X"}
    plain = operation_message(o, payload, source="core", target="tax")
    again = operation_message(o, payload, source="core", target="tax")
    salted = operation_message(o, payload, source="core", target="tax", salt="again")
    assert plain.idempotency_key == again.idempotency_key
    assert plain.message_id != again.message_id
    assert salted.idempotency_key != plain.idempotency_key
    assert plain.type == o.msg_type


def test_headers_mirror_the_envelope() -> None:
    m = _msg(attempt=3, causation_id="cause-1")
    assert m.headers() == {
        HEADER_ATTEMPT: 3, HEADER_CAUSATION: "cause-1", HEADER_IDEMPOTENCY: m.idempotency_key,
        HEADER_SOURCE: "core", HEADER_TARGET: "tax", HEADER_ENTITY: "person-1",
    }
    assert HEADER_ATTEMPT == "x-attempt"
    assert _msg().headers()[HEADER_CAUSATION] == ""


def test_body_roundtrip() -> None:
    m = _msg(attempt=2)
    body = m.to_body()
    assert isinstance(body, bytes)
    assert json.loads(body)["payload"] == PAYLOAD
    assert HubMessage.model_validate_json(body) == m


@pytest.mark.parametrize("over", [
    {"type": "Tax.Enroll"}, {"type": "single"}, {"source": ""}, {"correlation_id": ""},
    {"attempt": -1}, {"idempotency_key": ""}, {"message_id": "x" * 65}, {"extra": 1},
])
def test_invalid_envelopes_are_refused(over: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _msg(**over)


def test_envelope_is_frozen() -> None:
    with pytest.raises(ValidationError):
        _msg().attempt = 1  # type: ignore[misc]
