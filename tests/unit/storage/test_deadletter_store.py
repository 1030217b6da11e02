"""The dead-letter archive and the audit log on a migrated SQLite file (alembic 0001 + 0002)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import text

from storage.deadletters import DeadLetterFilter
from tests.support.ops import ID, PHONE, Db, letter


async def test_round_trip_keeps_the_body_raw_and_masks_reason_and_headers(db: Db) -> None:
    src = letter(1)
    id_ = await db.store.add(src)
    got = await db.store.get(id_)
    assert got is not None and got.id == id_
    assert got.body == src.body and ID.encode() in got.body  # raw: a retry needs it
    assert ID not in got.reason and got.reason.startswith("tax answered 503 for 320102")
    assert ID not in json.dumps(got.headers)
    assert got.headers["x-idempotency-key"] == "k1" and got.headers["x-attempt"] == 5
    assert got.first_seen == src.first_seen and got.dead_at.tzinfo is not None
    assert (got.status, got.retried_count) == ("dead", 0)
    assert await db.store.get(id_ + 100) is None


async def test_odd_values_are_clipped_not_refused(db: Db) -> None:
    id_ = await db.store.add(letter(2, message_id="m" * 300, reason="r" * 10_000,
                                    headers={"when": datetime(2026, 1, 1, tzinfo=UTC),
                                             "raw": b"\xff\xfe", "deaths": [{"count": 1}]},
                                    body=b"\x00\x01 not json"))
    got = await db.store.get(id_)
    assert got is not None and len(got.message_id) == 64 and len(got.reason) == 4000
    assert got.headers["when"].startswith("2026-01-01T00:00:00")
    assert got.body == b"\x00\x01 not json"


async def _seed(db: Db) -> dict[str, int]:
    base = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    rows = {
        "a": letter(1, dead_at=base),
        "b": letter(2, dead_at=base + timedelta(hours=1)),
        "c": letter(3, dead_at=base + timedelta(hours=2), reason_code="VALIDATION",
                    reason="payload.id_number: bad checksum"),
        "d": letter(4, dead_at=base + timedelta(hours=3), partner="core", type="core.sync_status",
                    route="core.sync", reason_code="CLIENT_ERROR", reason="core said 400"),
        "e": letter(5, dead_at=base + timedelta(hours=4), status="archived"),
    }
    return {k: await db.store.add(v) for k, v in rows.items()}


async def test_filters_narrow_and_combine(db: Db) -> None:
    ids = await _seed(db)
    base = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)

    async def pick(**kw: object) -> list[int]:
        return [d.id for d in await db.store.list(DeadLetterFilter(**kw))]  # type: ignore[arg-type]

    assert await pick() == [ids[k] for k in "edcba"]  # newest first
    assert await pick(partner="core") == [ids["d"]]
    assert await pick(type="tax.employee.enroll", status="dead") == [ids[k] for k in "cba"]
    assert await pick(reason_code="UNAVAILABLE") == [ids[k] for k in "eba"]
    assert await pick(status="archived") == [ids["e"]]
    assert await pick(route="core.sync") == [ids["d"]]
    assert await pick(since=base + timedelta(hours=1), until=base + timedelta(hours=3)) == \
        [ids["c"], ids["b"]]
    # a zoned time is compared in UTC (SQLite keeps no zone)
    cst = timezone(timedelta(hours=8))
    assert await pick(since=datetime(2026, 11, 20, 19, 0, tzinfo=cst)) == [ids[k] for k in "ed"]
    assert await pick(ids=[ids["a"], ids["d"], 999]) == [ids["d"], ids["a"]]
    assert await pick(after_id=ids["c"]) == [ids["e"], ids["d"]]
    assert await db.store.count(DeadLetterFilter(status="dead")) == 4
    page = await db.store.list(None, limit=2, offset=1)
    assert [d.id for d in page] == [ids["d"], ids["c"]]
    oldest = await db.store.list(DeadLetterFilter(status="dead"), limit=2, oldest_first=True)
    assert [d.id for d in oldest] == [ids["a"], ids["b"]]


async def test_groups_count_dead_letters_by_reason_partner_and_type(db: Db) -> None:
    await _seed(db)
    groups = await db.store.groups()
    assert [(g.reason_code, g.partner, g.type, g.count) for g in groups] == [
        ("UNAVAILABLE", "tax", "tax.employee.enroll", 2),
        ("CLIENT_ERROR", "core", "core.sync_status", 1),
        ("VALIDATION", "tax", "tax.employee.enroll", 1),
    ]
    top = groups[0]
    assert top.first_dead_at < top.last_dead_at and ID not in top.reason
    assert [g.count for g in await db.store.groups(DeadLetterFilter(status="archived"))] == [1]
    assert [g.partner for g in await db.store.groups(DeadLetterFilter(partner="core"))] == \
        ["core"]


async def test_mark_is_a_compare_and_set_and_counts_retries(db: Db) -> None:
    ids = await _seed(db)
    assert await db.store.mark([ids["a"], ids["e"], 999], "retried", only_from=("dead",)) == \
        [ids["a"]]
    assert await db.store.mark([ids["a"]], "retried", only_from=("dead",)) == []
    a = await db.store.get(ids["a"])
    assert a is not None and (a.status, a.retried_count) == ("retried", 1)
    assert a.updated_at > a.dead_at
    assert await db.store.mark([ids["b"], ids["c"]], "archived") == [ids["b"], ids["c"]]
    assert await db.store.mark([], "archived") == []


async def test_audit_log_masks_details_and_filters(db: Db) -> None:
    first = await db.audit.record("olga", "operations", "dead_letter.retry", "ids:1",
                                  {"patch": {"id_number": ID, "tel": PHONE}, "n": 2})
    await db.audit.record("carl", "caseworker", "POST /admin/x", "/admin/x", None, "forbidden")
    rows = await db.audit.list()
    assert [r.actor for r in rows] == ["carl", "olga"]
    assert rows[1].id == first and rows[1].detail["n"] == 2
    assert ID not in json.dumps(rows[1].detail, ensure_ascii=False)
    assert PHONE not in json.dumps(rows[1].detail)
    assert [r.actor for r in await db.audit.list(outcome="forbidden")] == ["carl"]
    assert [r.actor for r in await db.audit.list(actor="olga", action="dead_letter.retry")] == \
        ["olga"]
    assert await db.audit.list(since=datetime.now(UTC) + timedelta(minutes=1)) == []
    assert len(await db.audit.list(until=datetime.now(UTC) + timedelta(minutes=1),
                                   limit=1)) == 1
    async with db.audit.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT detail FROM audit_log"))).scalars().all()
    assert not any(ID in s for s in stored)


async def test_id_headers_are_kept_as_they_are_so_a_retry_sends_them_on(db: Db) -> None:
    # hex that the phone pattern would take for a mobile number, bounded by letters
    entity = "psn:ab13812345678cdef0"
    id_ = await db.store.add(letter(3, headers={"x-entity": entity, "x-dead-reason":
                                                f"call {PHONE}", "x-idempotency-key": "k3"}))
    got = await db.store.get(id_)
    assert got is not None and got.headers["x-entity"] == entity
    assert got.headers["x-dead-reason"] == "call 138****5678"
