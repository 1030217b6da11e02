"""services.worklists: which rows each list selects, masked, oldest first, counted."""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import insert

from contracts.ids import make_credit_code, make_id_number
from services import worklists
from services.worklists import UnknownWorklist
from storage.confirmations import IdentityCaseRow
from storage.difficulty import DifficultyRecordRow
from storage.journal import Journal, TxnUpdate, make_engine
from storage.ops_models import DeadLetterRow
from storage.refunds import RefundOrderRow
from storage.transfer import TransferRow
from storage.union import UnionCaseRow
from tests.support.ops import sqlite_url

RNG = random.Random(3015)
IDS = [make_id_number(RNG) for _ in range(8)]
USCC = make_credit_code(RNG)
T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
async def journal(template_db: Path, tmp_path: Path) -> AsyncIterator[Journal]:
    shutil.copy(template_db, tmp_path / "hub.db")
    j = Journal(make_engine(sqlite_url(tmp_path / "hub.db")), flush_ms=5)
    try:
        yield j
    finally:
        await j.engine.dispose()


def _deps(j: Journal, *, flows: bool = True) -> Any:
    present = object() if flows else None
    return SimpleNamespace(journal=j, confirmations=present, difficulty=present,
                           union=present, transfers=present, refunds=present)


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def _insert(j: Journal, model: Any, *rows: dict[str, Any]) -> None:
    async with j.engine.begin() as conn:
        await conn.execute(insert(model), list(rows))


def _dead_letter(cid: str, status: str, n: int) -> dict[str, Any]:
    return {"route": "tax.employee", "queue": "q", "message_id": f"m-{cid}-{n}",
            "correlation_id": cid, "type": "tax.employee.enroll", "partner": "tax",
            "source": "core", "reason_code": "TIMEOUT", "reason": "x", "attempts": 5,
            "first_seen": _at(0), "dead_at": _at(0), "headers": "{}", "body": b"{}",
            "status": status, "retried_count": 0, "updated_at": _at(0)}


async def test_failed_syncs_are_the_unresolved_failures_oldest_first(journal: Journal) -> None:
    def txn(cid: str, key: str, status: str, minute: int, source: str = "core") -> TxnUpdate:
        return TxnUpdate(cid, "tax.employee.enroll", key, source, status, "TX201",
                         f"{IDS[0]} rejected", at=_at(minute))

    await journal.write(
        txn("rejected-open", f"{USCC}:{IDS[0]}", "rejected", 1),
        txn("dead-open", f"{USCC}:{IDS[1]}", "dead", 2),
        txn("resent", f"{USCC}:{IDS[2]}", "rejected", 3),
        txn("the-resend", f"{USCC}:{IDS[2]}", "received", 4, source="resend"),
        txn("dup-after", f"{USCC}:{IDS[0]}", "duplicate", 5),   # a repeat fixes nothing
        txn("archived", f"{USCC}:{IDS[3]}", "dead", 6),
        txn("retrying", f"{USCC}:{IDS[4]}", "dead", 7),
        txn("delivered", f"{USCC}:{IDS[5]}", "delivered", 8),
        txn("unreadable", "-", "rejected", 9), txn("unreadable-2", "-", "rejected", 10))
    await _insert(journal, DeadLetterRow, _dead_letter("dead-open", "dead", 1),
                  _dead_letter("archived", "archived", 1),
                  _dead_letter("retrying", "dead", 1), _dead_letter("retrying", "retried", 2))
    page = await worklists.worklist(_deps(journal), "failed_syncs")
    assert [i.ref for i in page.items] == ["rejected-open", "dead-open", "unreadable",
                                           "unreadable-2"]
    assert page.total == 4
    first, dead = page.items[0], page.items[1]
    assert first.kind == "sync_rejected" and first.link == "/transactions/rejected-open"
    assert first.action == "/admin/resend/employee"
    assert first.subject.startswith(f"{USCC}:") and IDS[0] not in str(first.as_dict())
    assert dead.link.startswith("/admin/dead-letters/") and dead.kind == "sync_dead"
    assert dead.action == "/admin/dead-letters/retry"
    second = await worklists.worklist(_deps(journal), "failed_syncs", limit=1, offset=1)
    assert [i.ref for i in second.items] == ["dead-open"] and second.total == 4


async def test_the_flows_queues_select_what_waits_for_a_caseworker(journal: Journal) -> None:
    base_case = {"type": "tax.flexible.terminate", "business_key": IDS[0], "entity_key": "",
                 "name": "王小明", "phone": "", "confirm_no": "QR1", "reason_code": "TX402",
                 "reason": "身份信息不唯一", "attempts": 1, "held_message": "{}", "actor": "",
                 "updated_at": _at(0), "closed_at": None}
    await _insert(journal, IdentityCaseRow,
                  base_case | {"id": "a1", "correlation_id": "x1", "id_number": IDS[0],
                               "status": "open", "created_at": _at(2)},
                  base_case | {"id": "a2", "correlation_id": "x2", "id_number": IDS[1],
                               "status": "closed", "created_at": _at(1)})
    rec = {"list_id": "L", "department": "civil_affairs", "change": "add", "identity": "01",
           "name": "李四", "start_date": date(2026, 1, 1), "end_date": None, "phone": "",
           "source": "1", "remark": "", "comparison": "new", "first_reviewer": "",
           "second_reviewer": "", "reason": "", "platform_status": "", "created_at": _at(0)}
    await _insert(journal, DifficultyRecordRow,
                  rec | {"id": "r1", "row_no": 1, "id_number": IDS[2], "status": "second_review",
                         "updated_at": _at(5)},
                  rec | {"id": "r2", "row_no": 2, "id_number": IDS[3], "status": "first_review",
                         "updated_at": _at(3)},
                  rec | {"id": "r3", "row_no": 3, "id_number": IDS[4], "status": "approved",
                         "updated_at": _at(1)})
    union = {"year": 2026, "unit_code": "U1", "unit_name": "某公司", "urgent": False,
             "applicant_name": "张三", "applicant_phone": "", "application": "{}",
             "content_hash": "h", "complete_on": "2026-11-01", "accept_due": "2026-11-05",
             "pauses": json.dumps([]), "decision": "", "reason": "", "payable": "",
             "result_file": "", "actor": "", "updated_at": _at(0), "close_due": None}
    await _insert(journal, UnionCaseRow,
                  union | {"id": "u1", "case_no": "C1", "status": "accepted",
                           "applicant_id": IDS[5], "received_at": _at(1),
                           "close_due": "2026-12-01", "urgent": True},
                  union | {"id": "u2", "case_no": "C2", "status": "archived",
                           "applicant_id": IDS[6], "received_at": _at(0)})
    transfer = {"source": "platform", "channel_app_id": "", "direction": "out", "name": "赵六",
                "insutype": "310", "source_division": "320102", "target_division": "110101",
                "offline": False, "application": "{}", "reason_code": "TIMEOUT",
                "reason_field": "", "reason": "", "actor": "", "received_at": _at(0)}
    await _insert(journal, TransferRow,
                  transfer | {"application_no": "T1", "id_number": IDS[7], "status": "failed",
                              "updated_at": _at(4)},
                  transfer | {"application_no": "T2", "id_number": IDS[7],
                              "status": "out_approved", "updated_at": _at(4)})
    order = {"version": 1, "source": "1", "refund_no": "", "payer_kind": "person",
             "name": "钱七", "period_start": "202601", "period_end": "202601", "amount": "10.00",
             "payload": "{}", "reason_field": "", "reason": "", "finance_no": "",
             "refunded_on": "", "approved_at": _at(0), "paid_at": None, "created_at": _at(0)}
    await _insert(journal, RefundOrderRow,
                  order | {"order_no": "O1", "status": "failed", "payer": IDS[0], "alert": "",
                           "updated_at": _at(2)},
                  order | {"order_no": "O2", "status": "withdrawn", "payer": USCC,
                           "payer_kind": "unit", "alert": "已退费 on a withdrawn order",
                           "updated_at": _at(3)},
                  order | {"order_no": "O3", "status": "refunded", "payer": IDS[1],
                           "alert": "", "updated_at": _at(1)})
    deps = _deps(journal)
    assert await worklists.counts(deps) == {
        "failed_syncs": 0, "identity_confirmations": 1, "difficulty_reviews": 2,
        "difficulty_cases": 0, "union_cases": 1, "transfers_failed": 1, "refunds": 2}
    conf = (await worklists.worklist(deps, "identity_confirmations")).items
    assert [(i.ref, i.link) for i in conf] == [("a1", "/admin/confirmations/a1")]
    assert conf[0].subject == IDS[0][:6] + "********" + IDS[0][-4:]
    reviews = (await worklists.worklist(deps, "difficulty_reviews")).items
    assert [(i.ref, i.kind) for i in reviews] == [("r2", "first_review"),
                                                 ("r1", "second_review")]
    case = (await worklists.worklist(deps, "union_cases")).items[0]
    assert case.ref == "u1" and "urgent" in case.detail and "2026-12-01" in case.detail
    assert (await worklists.worklist(deps, "transfers_failed")).items[0].action == \
        "/admin/transfers/T1/resend"
    refunds = (await worklists.worklist(deps, "refunds")).items
    assert [(i.ref, i.kind) for i in refunds] == [("O1", "refund_failed"), ("O2", "refund_alert")]
    assert refunds[1].subject == USCC and IDS[0] not in refunds[0].subject
    text = json.dumps([i.as_dict() for lst in (conf, reviews, refunds) for i in lst],
                      ensure_ascii=False)
    assert not any(i in text for i in IDS) and "王小明" not in text


async def test_a_hub_without_a_flow_has_no_list_for_it(journal: Journal) -> None:
    deps = _deps(journal, flows=False)
    assert worklists.available(deps) == ["failed_syncs"]
    with pytest.raises(UnknownWorklist):
        await worklists.worklist(deps, "union_cases")
    with pytest.raises(UnknownWorklist):
        await worklists.worklist(deps, "nope")
