"""The status file's pure parts (1532): which rows are settled, the table, the bytes, the name."""

from __future__ import annotations

import pytest

from contracts.difficulty_files import (
    csv_delimiter,
    csv_encoding,
    file_format,
    record_cells,
    render_csv,
    row_statuses,
    split_table,
    status_counts,
    status_file_name,
    status_table,
)
from contracts.errors import ValidationFailed


def test_each_record_status_and_each_refusal_gives_the_row_its_state() -> None:
    got = row_statuses(
        [{"row_no": 2, "status": "synced", "reason": ""},
         {"row_no": 3, "status": "unchanged", "reason": ""},
         {"row_no": 4, "status": "sync_failed", "reason": "core: 人员不存在"},
         {"row_no": 5, "status": "first_review", "reason": ""}],
        [{"row": 6, "field": "phone", "reason": "bad"}, {"row": 0, "field": "x", "reason": "y"}])
    assert {n: (s.status, s.label) for n, s in got.items()} == {
        2: ("synced", "已同步"), 3: ("synced", "已同步"), 4: ("refused", "未通过"),
        5: ("pending", "处理中"), 6: ("refused", "未通过")}
    assert got[6].reason == "校验: 联系电话: bad" and got[4].reason == "core: 人员不存在"
    assert status_counts(got) == {"rows": 5, "synced": 2, "refused": 2, "pending": 1}


def test_the_table_keeps_the_departments_columns_and_pads_short_rows() -> None:
    statuses = row_statuses([{"row_no": 2, "status": "synced", "reason": ""}], [])
    table = status_table(["姓名", "身份证号"], [(2, ["张三"]), (3, ["李四", "x"])], statuses)
    assert table[0] == ["姓名", "身份证号", "同步情况", "原因"]
    assert table[1] == ["张三", None, "已同步", ""]
    assert table[2][2] == "未通过" and "row 3" in str(table[2][3])


def test_gbk_in_gbk_out_utf8_in_utf8_with_bom_out() -> None:
    gbk = "姓名,备注\r\n张三,甲\r\n".encode("gbk")
    assert csv_encoding(gbk) == "gbk"
    assert csv_encoding(b"\xef\xbb\xbfa,b") == csv_encoding("姓名".encode()) == "utf-8-sig"
    table = [["姓名", "原因"], ["张三", "校验: 身份证号: x, y"]]
    out = render_csv(table, encoding="gbk")
    assert out == "姓名,原因\r\n张三,\"校验: 身份证号: x, y\"\r\n".encode("gbk")
    assert render_csv(table).startswith(b"\xef\xbb\xbf")
    assert render_csv(table, delimiter="\t").decode("utf-8-sig").startswith("姓名\t原因")
    assert csv_delimiter(b"a\tb\n1,2") == "\t" and csv_delimiter(b"a,b\tc") == ","


def test_format_and_name() -> None:
    assert file_format("a.XLSX") == "xlsx" and file_format("a.bin", b"PK\x03\x04") == "xlsx"
    assert file_format("a.csv", b"PK\x03\x04") == "csv"
    name = status_file_name("../民政 11月.csv", "abcdef0123456789", "xlsx")
    assert name == "民政11月_abcdef01_同步情况.xlsx" and "/" not in name
    assert status_file_name("", "abcdef0123456789", "csv") == "list_abcdef01_同步情况.csv"


def test_the_table_is_split_as_the_import_reads_it() -> None:
    header, rows = split_table([(1, ["标题"]), (2, ["", None]), (3, ["姓名", "身份证号"]),
                                (4, ["张三", "1"]), (5, ["", ""]), (6, ["李四", "2"])])
    assert header == ["姓名", "身份证号"] and [n for n, _ in rows] == [4, 6]
    with pytest.raises(ValidationFailed, match="没有数据行"):
        split_table([(1, ["姓名"])])
    with pytest.raises(ValidationFailed, match="没有表头行"):
        split_table([(1, ["标题"]), (2, ["", None])])


def test_rows_rebuilt_from_records_carry_the_row_number_and_hub_values() -> None:
    rows = record_cells([{"row_no": 3, "change": "remove", "identity": "07",
                          "id_number": "X", "name": "张三", "start_date": "2026-11-01",
                          "end_date": None, "phone": "", "source": "1", "remark": ""}],
                        [{"row": 2, "field": "identity", "reason": "bad"}])
    assert rows == [(2, [2]), (3, [3, "减少", "07 建档立卡", "X", "张三", "2026-11-01", "",
                                   "", "困难人员", ""])]
