"""F1 multi-part applications: parts are recorded once each, in O(n), and a redelivered
intake never wipes them (on a real migrated SQLite store; channel and tax are fakes)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from contracts.envelope import HubMessage
from contracts.messages import APPLICATION, result_message
from retry.memo import TtlMemo
from routes.channels import intake, push_result
from storage.applications import ApplicationStore
from tests.support.fakes import FakeChannels, FakeCore, FakeTax
from tests.support.ops import Db

GRADUATES = json.loads((Path(__file__).resolve().parents[3] / "contracts" / "fixtures"
                        / "channels" / "graduate_stop_batch.json").read_text("utf-8"))


@dataclass
class World:
    applications: ApplicationStore
    channels: FakeChannels = field(default_factory=FakeChannels)
    core: FakeCore = field(default_factory=FakeCore)
    tax: FakeTax = field(default_factory=FakeTax)
    memo: TtlMemo = field(default_factory=TtlMemo)


async def _application(store: ApplicationStore) -> tuple[str, HubMessage]:
    payload = GRADUATES["payload"]
    row, _ = await store.create("my_nanjing", "req-1", "graduate_stop_batch", payload)
    msg = HubMessage(type=APPLICATION, source="channel.my_nanjing", target="core",
                     correlation_id=row["id"], idempotency_key=f"k-{row['id']}",
                     payload={"application_id": row["id"], "channel": "my_nanjing",
                              "type": "graduate_stop_batch", "request_id": "req-1",
                              "tax_operation": "", "payload": payload})
    return row["id"], msg


def _part(app_id: str, cid: str, cause: HubMessage, status: str = "synced") -> HubMessage:
    return result_message("my_nanjing", {"application_id": app_id, "correlation_id": cid,
                                         "status": status, "reason_code": "",
                                         "reason_field": "", "reason_text": "",
                                         "accept_no": f"A-{cid}"}, cause=cause)


async def test_each_part_is_recorded_once_and_the_last_one_pushes_once(db: Db) -> None:
    w = World(ApplicationStore(db.store.engine))
    app_id, msg = await _application(w.applications)
    out = await intake(msg, w)
    n = len(out.outputs)
    assert n == len(GRADUATES["payload"]["persons"]) and n >= 2
    parts = [_part(app_id, o.correlation_id, msg) for o in out.outputs]
    assert all(p.entity_key == "" for p in parts)  # no ordering gate between parts
    for p in parts[:-1]:
        await push_result(p, w)
        await push_result(p, w)  # a redelivered part changes nothing
    assert w.channels.pushed == []
    await push_result(parts[-1], w)
    [final] = w.channels.pushed
    assert final["status"] == "completed" and len(final["parts"]) == n
    assert (await w.applications.get(app_id) or {})["status"] == "completed"


async def test_a_redelivered_intake_keeps_the_parts_already_recorded(db: Db) -> None:
    w = World(ApplicationStore(db.store.engine))
    app_id, msg = await _application(w.applications)
    out = await intake(msg, w)
    parts = [_part(app_id, o.correlation_id, msg) for o in out.outputs]
    await push_result(parts[0], w)
    again = await intake(msg, w)  # the broker redelivers the intake after a crash
    assert [o.idempotency_key for o in again.outputs] == \
        [o.idempotency_key for o in out.outputs]
    for p in parts[1:]:
        await push_result(p, w)
    [final] = w.channels.pushed
    assert len(final["parts"]) == len(parts)


async def test_only_one_claimer_pushes_and_its_redelivery_pushes_again(db: Db) -> None:
    store = ApplicationStore(db.store.engine)
    app_id, _ = await _application(store)
    assert await store.claim_final(app_id, "key-a")
    assert not await store.claim_final(app_id, "key-b")
    assert await store.claim_final(app_id, "key-a")


async def test_a_rejected_part_rejects_the_application_with_its_reason(db: Db) -> None:
    w = World(ApplicationStore(db.store.engine))
    app_id, msg = await _application(w.applications)
    out = await intake(msg, w)
    for i, o in enumerate(out.outputs):
        p = _part(app_id, o.correlation_id, msg, "rejected" if i == 1 else "synced")
        if i == 1:
            p = p.model_copy(update={"payload": p.payload | {"reason_code": "TX999",
                                                             "reason_text": "不予受理"}})
        await push_result(p, w)
    [final] = w.channels.pushed
    assert (final["status"], final["reason_code"]) == ("rejected", "TX999")
    assert (await w.applications.get(app_id) or {})["status"] == "rejected"
