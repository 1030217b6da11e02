"""The admin dead-letter endpoints on a SQLite archive with a recording requeue: masking,
retry by ids / group / all with pacing and limits, edit-and-retry, archive, auditing."""

from __future__ import annotations

import json
from typing import Any

import httpx
from fastapi import FastAPI

from api.admin import admin_router
from contracts.envelope import HubMessage
from services.dead_letters import merge_patch
from tests.support.ops import (
    ID,
    NAME,
    PHONE,
    PRINCIPALS,
    Admin,
    RecordingIdem,
    bearer,
    fake_deps,
    letter,
)

OPS = bearer("operations")


async def _add(admin: Admin, *letters: Any) -> list[int]:
    return [await admin.db.store.add(d) for d in letters]


async def _retry(admin: Admin, **body: Any) -> httpx.Response:
    return await admin.client.post("/admin/dead-letters/retry", headers=OPS,
                                   json={"reason": "tax is back"} | body)


async def test_list_and_show_mask_personal_data(admin: Admin) -> None:
    [a, b] = await _add(admin, letter(1), letter(2, body=f'{{"broken {ID}'.encode()))
    r = await admin.client.get("/admin/dead-letters", headers=bearer("readonly"))
    assert r.status_code == 200
    page = r.json()
    assert page["total"] == 2 and [d["id"] for d in page["items"]] == [b, a]
    for raw in (ID, PHONE, NAME):
        assert raw not in r.text
    item = page["items"][1]
    assert item["body_readable"] and item["body"]["payload"]["id_number"] == "320102********0017"
    assert item["body"]["payload"]["name"] == "张**"
    assert not page["items"][0]["body_readable"] and "320102" in page["items"][0]["body"]
    r = await admin.client.get(f"/admin/dead-letters/{a}", headers=bearer("caseworker"))
    assert r.status_code == 200 and ID not in r.text
    assert r.json()["headers"]["x-idempotency-key"] == "k1"
    [view] = await admin.db.audit.list(action="dead_letter.view")
    assert (view.actor, view.target) == ("carl", f"id:{a}")
    r = await admin.client.get("/admin/dead-letters/999", headers=OPS)
    assert r.status_code == 404


async def test_list_filters_and_groups(admin: Admin) -> None:
    await _add(admin, letter(1), letter(2), letter(3, reason_code="VALIDATION", reason="bad"),
               letter(4, partner="core", type="core.sync_status", reason_code="CLIENT_ERROR"))
    get = admin.client.get
    r = await get("/admin/dead-letters", headers=OPS, params={"reason_code": "UNAVAILABLE"})
    assert r.json()["total"] == 2
    r = await get("/admin/dead-letters", headers=OPS, params={"partner": "core", "limit": 1})
    assert [d["partner"] for d in r.json()["items"]] == ["core"]
    r = await get("/admin/dead-letters", headers=OPS,
                  params={"since": "2026-11-20T08:00:02Z", "until": "2026-11-20T08:00:04Z"})
    assert [d["message_id"] for d in r.json()["items"]] == ["m3", "m2"]
    r = await get("/admin/dead-letters", headers=OPS, params={"status": "nonsense"})
    assert r.status_code == 422
    r = await get("/admin/dead-letters/groups", headers=OPS)
    assert [(g["reason_code"], g["count"]) for g in r.json()] == \
        [("UNAVAILABLE", 2), ("CLIENT_ERROR", 1), ("VALIDATION", 1)]


async def test_retry_by_ids_forgets_the_key_resets_headers_and_audits(admin: Admin) -> None:
    [a, b] = await _add(admin, letter(1), letter(2))
    r = await _retry(admin, ids=[a, a, 999])
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["done"] == [a] and res["failed"] == [] and res["remaining"] == 0
    assert res["skipped"] == [{"id": 999, "reason": "no such dead letter"}]
    assert admin.idem.forgotten == ["k1"]
    [(body, queue, headers)] = admin.sent.calls
    assert body == letter(1).body and queue == "t.q.tax.employee"
    assert headers["x-attempt"] == 0 and headers["x-retry-of"] == a
    assert not {"x-failures", "x-dead-reason", "x-death"} & set(headers)
    row = await admin.db.store.get(a)
    assert row is not None and (row.status, row.retried_count) == ("retried", 1)
    assert (await admin.db.store.get(b)).status == "dead"  # type: ignore[union-attr]
    [entry] = await admin.db.audit.list(action="dead_letter.retry")
    assert (entry.actor, entry.role, entry.outcome) == ("olga", "operations", "partial")
    assert entry.detail | {"rate_per_s": 50.0} == entry.detail
    assert (entry.detail["done"], entry.detail["skipped"], entry.detail["reason"]) == \
        (1, 1, "tax is back")
    assert entry.id == res["audit_id"] and entry.target == f"ids:{a},{a},999"
    # a second retry of the same row does nothing: it is no longer dead
    res = (await _retry(admin, ids=[a])).json()
    assert res["done"] == [] and res["skipped"][0]["reason"] == "status is retried"
    assert len(admin.sent.calls) == 1


async def test_retry_skips_unreadable_envelopes(admin: Admin) -> None:
    [bad, good] = await _add(admin, letter(1, body=b"{not json"), letter(2))
    res = (await _retry(admin, group={"reason_code": "UNAVAILABLE"})).json()
    assert res["done"] == [good]
    assert res["skipped"][0]["id"] == bad and "not a readable hub envelope" in \
        res["skipped"][0]["reason"]
    assert (await admin.db.store.get(bad)).status == "dead"  # type: ignore[union-attr]


async def test_retry_by_group_and_all_is_paced_and_limited(admin: Admin) -> None:
    ids = await _add(admin, *(letter(i) for i in range(6)),
                     letter(10, partner="core", reason_code="CLIENT_ERROR"))
    res = (await _retry(admin, group={"reason_code": "UNAVAILABLE", "partner": "tax"},
                        rate_per_s=20, limit=4)).json()
    assert res["done"] == ids[:4] and res["remaining"] == 2 and res["selected"] == 4
    gaps = [b - a for a, b in zip(admin.sent.at, admin.sent.at[1:], strict=False)]
    assert min(gaps) >= 0.04, gaps  # 20/s: 50 ms apart, give or take the clock
    res = (await _retry(admin, all=True, rate_per_s=1000)).json()
    assert res["done"] == [ids[4], ids[5], ids[6]] and res["remaining"] == 0
    assert [e.target for e in await admin.db.audit.list(action="dead_letter.retry")] == \
        ["all", "group:UNAVAILABLE/tax/*"]


async def test_a_failed_send_leaves_the_row_dead(admin: Admin) -> None:
    [a] = await _add(admin, letter(1))
    admin.sent.fail = True
    res = (await _retry(admin, ids=[a])).json()
    assert res["done"] == [] and res["failed"][0]["id"] == a
    assert "ConnectionError" in res["failed"][0]["reason"]
    assert (await admin.db.store.get(a)).status == "dead"  # type: ignore[union-attr]
    [entry] = await admin.db.audit.list(action="dead_letter.retry")
    assert entry.outcome == "failed"


async def test_retry_request_is_validated(admin: Admin) -> None:
    for body in ({"reason": "x"}, {"ids": [1], "all": True, "reason": "x"}, {"ids": [1]},
                 {"ids": [1], "reason": "x", "rate_per_s": 0}, {"ids": [], "reason": "x"}):
        r = await admin.client.post("/admin/dead-letters/retry", headers=OPS, json=body)
        assert r.status_code == 422, body


async def test_default_requeue_is_the_hubs_publisher(admin: Admin) -> None:
    class Publisher:
        def __init__(self) -> None:
            self.queues: list[str] = []

        async def requeue(self, body: bytes, queue: str, headers: dict[str, Any]) -> None:
            self.queues.append(queue)

    pub = Publisher()
    deps = fake_deps(RecordingIdem(), publisher=pub)
    app = FastAPI()
    app.include_router(admin_router(deps, admin.db.store, admin.db.audit, PRINCIPALS))
    [a] = await _add(admin, letter(1))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://hub") as client:
        r = await client.post("/admin/dead-letters/retry", headers=OPS,
                              json={"ids": [a], "reason": "x"})
    assert r.json()["done"] == [a] and pub.queues == ["t.q.tax.employee"]


async def test_edit_retry_patches_the_payload_under_a_new_message_id(admin: Admin) -> None:
    [a] = await _add(admin, letter(1))
    fixed = "320102199005170025"
    r = await admin.client.post(f"/admin/dead-letters/{a}/edit-retry", headers=bearer("admin"),
                                json={"patch": {"id_number": fixed, "phone": None},
                                      "reason": "core sent a typo"})
    assert r.status_code == 200, r.text
    [(body, queue, headers)] = admin.sent.calls
    msg = HubMessage.model_validate_json(body)
    old = HubMessage.model_validate_json(letter(1).body)
    assert msg.payload == {k: v for k, v in old.payload.items() if k != "phone"} | \
        {"id_number": fixed}
    assert msg.message_id == r.json()["message_id"] != old.message_id
    assert msg.causation_id == old.message_id and msg.attempt == 0
    assert msg.idempotency_key == old.idempotency_key and admin.idem.forgotten == ["k1"]
    assert headers["x-edited-by"] == "root" and queue == "t.q.tax.employee"
    assert (await admin.db.store.get(a)).status == "retried"  # type: ignore[union-attr]
    [entry] = await admin.db.audit.list(action="dead_letter.edit_retry")
    assert entry.outcome == "ok" and entry.detail["fields"] == ["id_number", "phone"]
    assert fixed not in json.dumps(entry.detail)  # the patch is masked in the audit too
    r = await admin.client.post(f"/admin/dead-letters/{a}/edit-retry", headers=bearer("admin"),
                                json={"patch": {"n": 2}, "reason": "again"})
    assert r.status_code == 409


async def test_edit_retry_refuses_an_invalid_result_and_audits_it(admin: Admin) -> None:
    [a, b] = await _add(admin, letter(1), letter(2, body=b"[1]"))
    url = f"/admin/dead-letters/{a}/edit-retry"
    r = await admin.client.post(url, headers=bearer("admin"),
                                json={"patch": "not an object", "reason": "x"})
    assert r.status_code == 422
    r = await admin.client.post(f"/admin/dead-letters/{b}/edit-retry", headers=bearer("admin"),
                                json={"patch": {"x": 1}, "reason": "x"})
    assert r.status_code == 422 and "not a JSON object" in r.text
    # the envelope is strict (extra="forbid"), so a patch cannot smuggle in nonsense...
    # ...but the payload is free-form: validate the envelope around it
    r = await admin.client.post(url, headers=bearer("admin"),
                                json={"patch": {"id_number": None}, "reason": "x"})
    assert r.status_code == 200  # the envelope stays valid; the route validates the payload
    [c] = await _add(admin, letter(3, body=json.dumps({"type": "Bad Type", "source": "core",
                                                       "target": "tax", "correlation_id": "c",
                                                       "idempotency_key": "k",
                                                       "payload": {}}).encode()))
    r = await admin.client.post(f"/admin/dead-letters/{c}/edit-retry", headers=bearer("admin"),
                                json={"patch": {"a": 1}, "reason": "x"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "type"
    outcomes = [e.outcome for e in await admin.db.audit.list(action="dead_letter.edit_retry")]
    assert outcomes == ["invalid", "ok", "invalid"]
    assert (await admin.db.store.get(c)).status == "dead"  # type: ignore[union-attr]


async def test_archive_by_ids_and_group(admin: Admin) -> None:
    [a, b, c] = await _add(admin, letter(1), letter(2), letter(3, reason_code="VALIDATION"))
    r = await admin.client.post("/admin/dead-letters/archive", headers=OPS,
                                json={"ids": [a], "reason": "duplicate of a resend"})
    assert r.json()["done"] == [a]
    r = await admin.client.post("/admin/dead-letters/archive", headers=OPS,
                                json={"group": {"reason_code": "UNAVAILABLE"}, "reason": "old"})
    assert r.json()["done"] == [b]
    r = await admin.client.post("/admin/dead-letters/archive", headers=OPS,
                                json={"ids": [a, c], "reason": "x"})
    assert r.json()["done"] == [c] and r.json()["skipped"] == \
        [{"id": a, "reason": "status is archived"}]
    r = await admin.client.post("/admin/dead-letters/archive", headers=OPS,
                                json={"all": True, "reason": "x"})
    assert r.status_code == 422
    assert admin.sent.calls == []
    entries = await admin.db.audit.list(action="dead_letter.archive")
    assert [e.outcome for e in entries] == ["partial", "ok", "ok"]


def test_merge_patch_follows_rfc_7386() -> None:
    assert merge_patch({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": None, "e": 4}, "f": 5}) == \
        {"a": 1, "b": {"d": 3, "e": 4}, "f": 5}
    assert merge_patch({"a": 1}, [1]) == [1]
    assert merge_patch(None, {"a": None, "b": 1}) == {"b": 1}


async def test_envelope_ids_are_shown_unmangled_in_the_masked_body(admin: Admin) -> None:
    msg = HubMessage(message_id="ab13812345678cdef0", type="tax.employee.enroll", source="core",
                     target="tax", correlation_id="c", idempotency_key="k",
                     entity_key="psn:ff13912345678aa", payload={"note": f"call {PHONE}"})
    [a] = await _add(admin, letter(1, body=msg.to_body()))
    r = await admin.client.get(f"/admin/dead-letters/{a}", headers=OPS)
    body = r.json()["body"]
    assert (body["message_id"], body["entity_key"]) == (msg.message_id, msg.entity_key)
    assert body["payload"]["note"] == "call 138****5678"
