"""F7 contract: the identity table (1477, 1482), each department's codes (1507-1522), and a
list checked row by row (bad rows refused with row, field and reason; good rows kept)."""

from __future__ import annotations

import random

from contracts.difficulty import (
    DEPARTMENT_IDENTITIES,
    DEPARTMENTS,
    IDENTITIES,
    DifficultyRecord,
    check_list,
    check_record,
    core_message,
    department_of,
    partner_of,
    status_message,
)
from contracts.ids import make_id_number

ID = make_id_number(random.Random(1))
ROW = {"change": "增加", "identity": "01", "id_number": ID, "name": "张三",
       "start_date": "2026-11-01"}


def test_identity_table_is_the_seeds_and_every_code_has_one_sender() -> None:
    assert len(IDENTITIES) == 17
    assert {"低保", "特困职工", "建档立卡", "拆迁人员", "孤儿(新)", "重病重残儿童",
            "事实无人抚养儿童", "支出型大重病患者",
            "临时救助大重病患者"} <= set(IDENTITIES.values())
    senders = [c for codes in DEPARTMENT_IDENTITIES.values() for c in codes]
    assert sorted(senders) == sorted(IDENTITIES)  # each code, exactly one sender
    assert DEPARTMENT_IDENTITIES["trade_union"] == {"06"}
    assert DEPARTMENT_IDENTITIES["agriculture"] == {"07"}
    assert len(DEPARTMENT_IDENTITIES["civil_affairs"]) == 5
    assert department_of("民政局") == "civil_affairs" and department_of("公安") is None
    assert partner_of("trade_union") == "difficulty_trade_union"


def test_labels_and_codes_are_both_read() -> None:
    rec = check_record("civil_affairs", ROW | {"identity": "低保", "change": "增加",
                                               "source": "困难人员"})
    assert isinstance(rec, DifficultyRecord)
    assert (rec.identity, rec.change, rec.source) == ("01", "add", "1")
    rec = check_record("civil_affairs", ROW | {"identity": "1", "change": "减少",
                                               "end_date": "2026年11月30日"})
    assert isinstance(rec, DifficultyRecord) and rec.end_date is not None


def test_bad_rows_are_refused_with_row_field_and_reason_good_rows_kept() -> None:
    rows = [
        ROW,
        ROW | {"identity": "99", "id_number": make_id_number(random.Random(2))},
        ROW | {"id_number": ID[:17] + ("0" if ID[17] != "0" else "1")},
        ROW,  # duplicate of row 1
        ROW | {"id_number": make_id_number(random.Random(3)), "end_date": "2026-10-01"},
        ROW | {"id_number": make_id_number(random.Random(4)), "identity": "06"},
        ROW | {"id_number": make_id_number(random.Random(5)), "change": "减少"},
        ROW | {"id_number": make_id_number(random.Random(6)), "phone": "12345"},
        {"change": "增加"},
    ]
    check = check_list("civil_affairs", "2026-11", rows)
    assert [r for r, _ in check.good] == [1]
    by_row = {(r.row, r.field) for r in check.refused}
    assert {(2, "identity"), (3, "id_number"), (4, "id_number"), (5, "end_date"),
            (6, "identity"), (7, "end_date"), (8, "phone"), (9, "identity"),
            (9, "id_number"), (9, "name"), (9, "start_date")} == by_row
    reasons = {r.row: r.reason for r in check.refused}
    assert "duplicate of row 1" in reasons[4]
    assert "check character" in reasons[3]
    assert "民政局" in reasons[6]
    assert check.refused_rows == 8


def test_unknown_department_or_month_refuses_the_whole_list() -> None:
    check = check_list("police", "2026-11", [ROW])
    assert check.good == [] and [(r.row, r.field) for r in check.refused] == [(0, "department")]
    check = check_list("civil_affairs", "2026-13", [ROW])
    assert [(r.row, r.field) for r in check.refused] == [(0, "month")]


def test_the_bureau_registers_what_no_department_sends() -> None:
    assert isinstance(check_record("bureau", ROW | {"identity": "16", "source": "医疗救助"}),
                      DifficultyRecord)
    assert isinstance(check_record("bureau", ROW), list)


def test_messages_are_keyed_by_meaning_and_ordered_per_person() -> None:
    payload = {"record_id": "r1", "action": "enter", "id_number": ID, "department": "veterans"}
    a, b = core_message(payload), core_message(dict(payload))
    assert a.idempotency_key == b.idempotency_key and a.entity_key == b.entity_key
    assert ID not in a.entity_key
    assert core_message(payload, salt="case").idempotency_key != a.idempotency_key
    st = status_message("veterans", {"record_id": "r1", "status": "synced"})
    assert st.type == "difficulty.status.veterans" and st.target == "difficulty_veterans"
    assert set(DEPARTMENTS) == {"civil_affairs", "trade_union", "veterans", "agriculture"}
