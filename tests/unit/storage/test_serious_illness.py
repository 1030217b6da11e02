"""F15 store: migration 0019 matches the models and goes back; a share is recorded once and
moves by compare-and-set; the overdue list (111); paying residents from return files (39);
batches freeze once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from storage.returnfile_models import ReturnFileRow, ReturnRecordRow
from storage.serious_illness import (
    BatchRow,
    ClueRow,
    FinancingRow,
    SeriousIllnessStore,
    ShareRow,
    masked_share,
)
from storage.times import utc_now
from tests.support.migrations import check_migration, engine_copy

TABLES = {t.__tablename__ for t in (ShareRow, BatchRow, FinancingRow, ClueRow)}
ID = "11010519491231002X"


def test_migration_0019_matches_the_models_and_goes_back(template_db: Path,
                                                          tmp_path: Path) -> None:
    check_migration(template_db, tmp_path, tables=TABLES, previous="0018",
                    matches="serious_illness_")


@pytest.fixture
async def store(template_db: Path, tmp_path: Path) -> AsyncIterator[SeriousIllnessStore]:
    async with engine_copy(template_db, tmp_path) as engine:
        yield SeriousIllnessStore(engine)


def _share(setl_id: str, **kw: Any) -> dict[str, Any]:
    return {"kind": "settle", "setl_id": setl_id, "orig_setl_id": "", "id_number": ID,
            "name": "王芳", "settled_at": "2026-03-04 09:30:00", "institution_code": "H1",
            "serious_illness_pay": "100.00"} | kw


async def test_a_share_is_recorded_once_and_moves_only_from_expected_states(
        store: SeriousIllnessStore) -> None:
    row, new = await store.record_share(_share("S1"), idem_key="k1", status="received")
    assert new and row["status"] == "received" and row["year"] == "2026"
    again, new = await store.record_share(_share("S1", name="别人"), idem_key="k2",
                                          status="received")
    assert not new and again["name"] == "王芳" and again["idem_key"] == "k1"
    assert not await store.set_share("S1", "delivered", expect=("queued",))
    assert await store.set_share("S1", "queued", expect=("received",))
    assert await store.set_share("S1", "delivered", expect=("queued",),
                                 delivered_on="2026-03-04", due_on="2026-03-25")
    got = await store.share("S1")
    assert got is not None and got["due_on"] == "2026-03-25"
    masked = masked_share(got)
    assert masked["id_number"] != ID and "payload" not in masked


async def test_overdue_lists_unpaid_and_late_claims_but_not_reversed_ones(
        store: SeriousIllnessStore) -> None:
    for setl_id in ("A", "B", "C", "D"):
        await store.record_share(_share(setl_id), idem_key=setl_id, status="received")
        await store.set_share(setl_id, "delivered", expect=("received",),
                              delivered_on="2026-03-04", due_on="2026-03-25")
    await store.record_share(_share("R", kind="reverse", orig_setl_id="D"), idem_key="R",
                             status="received")
    await store.set_share("R", "delivered", expect=("received",), delivered_on="2026-03-05")
    assert await store.mark_paid("A", "2026-03-20")  # in time
    assert await store.mark_paid("B", "2026-03-30")  # late
    assert not await store.mark_paid("B", "2026-03-31")  # the first payment day is kept
    assert not await store.mark_paid("R", "2026-03-31")  # a 冲销 is no claim
    late = [r["setl_id"] for r in await store.overdue(date(2026, 4, 1))]
    assert late == ["B", "C"]
    early = await store.overdue(date(2026, 3, 25))
    assert [r["setl_id"] for r in early] == ["B"]
    assert [r["setl_id"] for r in await store.year_claims("2026")] == ["A", "B", "C"]
    assert (await store.reversal_of("D") or {}).get("setl_id") == "R"


async def _file(store: SeriousIllnessStore, sha: str, kind: str, status: str,
                lines: list[dict[str, Any]]) -> None:
    now = utc_now()
    async with store.engine.begin() as conn:
        await conn.execute(insert(ReturnFileRow).values(
            sha256=sha, name=sha, kind=kind, file_date="20260115", batch_no="0001",
            status=status, size=1, lines=1, records=1, line_errors=0, amount_fen=0,
            arrivals=0, delivered_batches=0, delivered_through=0, reason_code="", reason="",
            started_at=now, updated_at=now, finished_at=now))
        await conn.execute(insert(ReturnRecordRow), [
            {"file_sha": sha, "line_no": i + 2, "serial": f"s{i}", "payer_type": "P",
             "payer_code": "", "payer_name": "x", "unit_code": "", "insutype": "390",
             "period": "202601", "pay_base_fen": 0, "amount_fen": 1, "value_date": "20260115",
             "result": "1", "fail_reason": "", "mode": ""} | line
            for i, line in enumerate(lines)])


async def test_paying_residents_are_distinct_arrivals_of_resident_insurance_in_the_year(
        store: SeriousIllnessStore) -> None:
    await _file(store, "a" * 64, "resident_pay", "delivered", [
        {"payer_code": "P1"}, {"payer_code": "P2"}, {"payer_code": "P1", "period": "202602"},
        {"payer_code": "P9", "period": "202501"}])
    await _file(store, "b" * 64, "resident_deduct", "stored", [
        {"payer_code": "P3"}, {"payer_code": "P4", "result": "0", "fail_reason": "余额不足"}])
    await _file(store, "c" * 64, "special_pay", "delivered", [
        {"payer_code": "P5", "mode": "3"}, {"payer_code": "P6", "mode": "2"}])
    await _file(store, "d" * 64, "resident_pay", "processing", [{"payer_code": "P7"}])
    await _file(store, "e" * 64, "flex_pay", "delivered", [{"payer_code": "P8",
                                                              "insutype": "310"}])
    assert await store.paying_residents("2026") == 4  # P1, P2, P3, P5
    assert await store.paying_residents("2025") == 1


async def test_a_batch_freezes_once_and_counts_its_runs(store: SeriousIllnessStore) -> None:
    row, new = await store.put_batch("clearing:2026", kind="clearing", period="2026",
                                     direction="out", status="frozen", count=1, total="1.00",
                                     payload={"rows": [1]}, serial="s1")
    assert new and row["runs"] == 1
    row, new = await store.put_batch("clearing:2026", kind="clearing", period="2026",
                                     direction="out", status="frozen", count=9, total="9.00",
                                     payload={"rows": [9]}, serial="s9")
    assert not new and row["count"] == 1 and row["serial"] == "s1" and row["runs"] == 2
    assert await store.set_batch("clearing:2026", "failed", expect=("frozen",), reason="x")
    assert not await store.set_batch("clearing:2026", "sent", expect=("frozen",))
    assert [b["id"] for b in await store.batches()] == ["clearing:2026"]
    fin, new = await store.add_financing({"year": "2026", "payers": 3, "total": "330.00"}, "ops")
    assert new and fin["status"] == "queued"
    assert await store.latest_financing("2026") is None  # not delivered yet
    await store.set_financing(fin["id"], "delivered")
    assert (await store.latest_financing("2026") or {})["payers"] == 3
