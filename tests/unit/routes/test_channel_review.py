"""Applications core reviews before tax (seed 1679, 2070, 2126): the intake registers and
waits; core's verdict (``channel.review``) sends the reviewed data to tax or tells the
channel why not (on a real migrated SQLite store; core, tax and channel are fakes)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.channels import ApplicationReview
from contracts.envelope import HubMessage
from contracts.errors import ValidationFailed
from contracts.messages import APPLICATION, review_message
from retry.memo import TtlMemo
from routes.channels import intake, reviewed
from storage.applications import ApplicationStore
from tests.support.fakes import FakeChannels, FakeCore, FakeTax
from tests.support.ops import Db

FIXTURES = Path(__file__).resolve().parents[3] / "contracts" / "fixtures" / "channels"
RETIRE = json.loads((FIXTURES / "retire.json").read_text("utf-8"))


@dataclass
class World:
    applications: ApplicationStore
    channels: FakeChannels = field(default_factory=FakeChannels)
    core: FakeCore = field(default_factory=FakeCore)
    tax: FakeTax = field(default_factory=FakeTax)
    memo: TtlMemo = field(default_factory=TtlMemo)


async def _registered(w: World) -> str:
    payload = RETIRE["payload"]
    row, _ = await w.applications.create("hrss", "req-r", "retire", payload)
    msg = HubMessage(type=APPLICATION, source="channel.hrss", target="core",
                     correlation_id=row["id"], idempotency_key=f"k-{row['id']}",
                     payload={"application_id": row["id"], "channel": "hrss",
                              "type": "retire", "request_id": "req-r", "tax_operation": "",
                              "payload": payload})
    out = await intake(msg, w)  # type: ignore[arg-type]
    assert out.outputs == () and out.txn is not None and out.txn.status == "awaiting_review"
    assert len(w.core.applications) == 1  # registered at core
    app = await w.applications.get(row["id"])
    assert app is not None and app["status"] == "awaiting_review"
    return str(row["id"])


def _review(app_id: str, approved: bool, **over: Any) -> HubMessage:
    body = {"application_id": app_id, "approved": approved, "review_kind": "person_review",
            "reason": "" if approved else "年限不足且未补缴",
            "reviewed_at": datetime(2026, 11, 24, 9, 0, tzinfo=UTC).isoformat(),
            "data": RETIRE["payload"] if approved else None} | over
    return review_message(ApplicationReview.model_validate(body).model_dump(mode="json"),
                          causation_id="core-msg")


async def test_an_approved_review_sends_the_reviewed_data_to_tax_once(db: Db) -> None:
    w = World(ApplicationStore(db.store.engine))
    app_id = await _registered(w)
    out = await reviewed(_review(app_id, True), w)  # type: ignore[arg-type]
    [submit] = out.outputs
    assert submit.type == "tax.employee.retire" and submit.correlation_id == app_id
    assert submit.payload["id_number"] == RETIRE["payload"]["id_number"]
    app = await w.applications.get(app_id)
    assert app is not None and app["status"] == "registered"
    again = await reviewed(_review(app_id, True), w)  # type: ignore[arg-type]
    assert again.outputs == () and "ignored" in again.detail


async def test_a_refused_review_tells_the_channel_with_cores_reason(db: Db) -> None:
    w = World(ApplicationStore(db.store.engine))
    app_id = await _registered(w)
    out = await reviewed(_review(app_id, False), w)  # type: ignore[arg-type]
    [result] = out.outputs
    assert result.type == "channel.result.hrss"
    assert (result.payload["status"], result.payload["reason_code"]) == (
        "rejected", "CORE_REVIEW_REFUSED")
    assert result.payload["reason_text"] == "年限不足且未补缴" and result.payload["final"]
    app = await w.applications.get(app_id)
    assert app is not None and app["status"] == "rejected"
    late = await reviewed(_review(app_id, True), w)  # type: ignore[arg-type]
    assert late.outputs == ()  # a verdict after the final one changes nothing


async def test_a_review_of_an_unknown_application_names_it(db: Db) -> None:
    w = World(ApplicationStore(db.store.engine))
    with pytest.raises(ValidationFailed, match=r"data\.application_id"):
        await reviewed(_review("nope", True), w)  # type: ignore[arg-type]


def test_a_review_says_why_when_refused_and_carries_data_when_approved() -> None:
    base = {"application_id": "a", "review_kind": "unit_review",
            "reviewed_at": "2026-11-24T09:00:00+08:00"}
    with pytest.raises(ValidationError, match="carries a reason"):
        ApplicationReview.model_validate(base | {"approved": False})
    with pytest.raises(ValidationError, match="carries data"):
        ApplicationReview.model_validate(base | {"approved": True})
    with pytest.raises(ValidationError, match="review_kind"):
        ApplicationReview.model_validate(base | {"approved": False, "reason": "x",
                                                 "review_kind": "other"})
