"""Student batch row contracts: every rule names its Chinese column and says why."""

from __future__ import annotations

import random
from datetime import date, datetime
from typing import Any

import pytest

from contracts.errors import ValidationFailed
from contracts.ids import make_id_number
from contracts.student_batch import (
    ENROLL_COLUMNS,
    STOP_COLUMNS,
    RowResult,
    StudentEnrollRow,
    StudentStopRow,
    cell_text,
    map_headers,
    validate_row,
)

TODAY = date(2025, 10, 1)
ID = make_id_number(random.Random(1), born=date(2005, 3, 4), male=False)


def enroll(**over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "school_name": "南京大学", "school_code": "10284", "student_no": "MF2401001",
        "id_number": ID, "name": "张小燕", "phone": "13812345678", "enroll_month": "202409",
        "insure_year": "2026", "community": "320102001001",
    }
    row.update(over)
    return row


def stop(**over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"id_number": ID, "name": "张小燕", "stop_date": "2026-07-01",
                           "stop_reason": "毕业"}
    row.update(over)
    return row


def errors_of(op: str, values: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as exc:
        validate_row(op, values, today=TODAY)  # type: ignore[arg-type]
    return dict(exc.value.errors)


def test_valid_row_derives_gender_and_birth_date() -> None:
    row = validate_row("enroll", enroll(), today=TODAY)
    assert isinstance(row, StudentEnrollRow)
    assert (row.gender, row.birth_date, row.difficulty_type) == ("2", date(2005, 3, 4), None)


def test_excel_cell_types_are_normalised() -> None:
    row = validate_row("enroll", enroll(
        school_code=10284, phone=13812345678.0, enroll_month=datetime(2024, 9, 1),
        insure_year=2026, community=320102001001, gender="女",
        birth_date=datetime(2005, 3, 4), id_number=ID.lower(), difficulty_type="低保对象",
    ), today=TODAY)
    assert isinstance(row, StudentEnrollRow)
    assert (row.school_code, row.phone, row.enroll_month, row.insure_year) == \
        ("10284", "13812345678", "202409", "2026")
    assert (row.gender, row.difficulty_type, row.community) == ("2", "02", "320102001001")


@pytest.mark.parametrize("month", ["2024-09", "2024/9", "2024年9月", "202409", 202409])
def test_enroll_month_spellings(month: object) -> None:
    row = validate_row("enroll", enroll(enroll_month=month), today=TODAY)
    assert isinstance(row, StudentEnrollRow) and row.enroll_month == "202409"


@pytest.mark.parametrize(("over", "column", "fragment"), [
    ({"school_name": ""}, "学校名称", "必填"),
    ({"school_code": "1028"}, "院校代码", "5位院校代码"),
    ({"student_no": "学号一"}, "学号", "字母、数字"),
    ({"id_number": ID[:-1] + ("0" if ID[-1] != "0" else "1")}, "身份证号", "校验位"),
    ({"id_number": ID[:17]}, "身份证号", "18位"),
    ({"id_number": ID[:6] + "20051340" + ID[14:]}, "身份证号", "不是有效日期"),
    ({"id_number": 3.2010520050304e17}, "身份证号", "文本格式"),
    ({"name": "张3"}, "姓名", "特殊字符"),
    ({"gender": "男"}, "性别", "与身份证号不符"),
    ({"gender": "X"}, "性别", "男/女"),
    ({"birth_date": "2005-03-05"}, "出生日期", "与身份证号不符"),
    ({"birth_date": "2005-02-30"}, "出生日期", "不是有效日期"),
    ({"phone": "0258888888"}, "手机号", "11位手机号"),
    ({"enroll_month": "2024-13"}, "入学年月", "yyyyMM"),
    ({"insure_year": "2020"}, "参保年度", "当年"),
    ({"insure_year": "2025", "enroll_month": "202609"}, "参保年度", "早于入学年份"),
    ({"community": "3201020010"}, "基层医保区划", "12位"),
    ({"community": "110101001001"}, "基层医保区划", "南京市"),
    ({"difficulty_type": "富裕"}, "困难人员类别", "未知的困难人员类别"),
])
def test_each_enroll_rule_names_its_column(over: dict[str, Any], column: str,
                                           fragment: str) -> None:
    errors = errors_of("enroll", enroll(**over))
    assert column in errors, errors
    assert fragment in errors[column]


def test_every_bad_cell_is_reported_at_once() -> None:
    errors = errors_of("enroll", enroll(phone="1", community="1", name=""))
    assert set(errors) == {"手机号", "基层医保区划", "姓名"}
    assert errors["姓名"] == "必填，不能为空"


def test_missing_cells_are_required_by_column() -> None:
    errors = errors_of("enroll", {})
    required = {c for c, f in ENROLL_COLUMNS.items()
                if f not in ("gender", "birth_date", "difficulty_type")}
    assert set(errors) == required
    assert set(errors.values()) == {"必填，不能为空"}


def test_unknown_field_is_refused() -> None:
    assert "extra" in errors_of("enroll", enroll(extra="x"))


def test_stop_row_codes_and_labels() -> None:
    row = validate_row("stop", stop(stop_reason="退学", remark="  休学后退学 "), today=TODAY)
    assert isinstance(row, StudentStopRow)
    assert (row.stop_reason, row.stop_date, row.remark) == ("02", date(2026, 7, 1), "休学后退学")
    coded = validate_row("stop", stop(stop_reason=1), today=TODAY)
    assert isinstance(coded, StudentStopRow) and coded.stop_reason == "01"


@pytest.mark.parametrize(("over", "column", "fragment"), [
    ({"stop_date": "2027-07-01"}, "停保日期", "超过一年"),
    ({"stop_date": "1999-07-01"}, "停保日期", "早于2000年"),
    ({"stop_date": "七月"}, "停保日期", "不是日期"),
    ({"stop_reason": "放假"}, "停保原因", "毕业"),
    ({"stop_reason": None}, "停保原因", "必填"),
    ({"remark": "长" * 201}, "备注", "200"),
    ({"id_number": "123"}, "身份证号", "18位"),
    ({"name": "A"}, "姓名", "特殊字符"),
])
def test_each_stop_rule_names_its_column(over: dict[str, Any], column: str,
                                         fragment: str) -> None:
    errors = errors_of("stop", stop(**over))
    assert column in errors, errors
    assert fragment in errors[column]


def test_headers_map_aliases_markers_and_order() -> None:
    headers = ["序号", "*姓名", "身份证号码", "停保日期（必填）", " 暂停原因 ", "备注"]
    hm = map_headers("stop", headers)
    assert hm.fields == (None, "name", "id_number", "stop_date", "stop_reason", "remark")
    assert hm.ignored == ("序号",)
    assert hm.values(["1", "张三", ID]) == {
        "name": "张三", "id_number": ID, "stop_date": None, "stop_reason": None, "remark": None}


def test_header_missing_or_repeated_column_fails_the_file() -> None:
    with pytest.raises(ValidationFailed) as exc:
        map_headers("stop", ["身份证号", "证件号码", "姓名"])
    reasons = [r for c, r in exc.value.errors]
    assert all(c == "表头" for c, _ in exc.value.errors)
    assert any("出现了两次" in r for r in reasons)
    assert any("缺少必填列：停保日期、停保原因" in r for r in reasons)
    assert set(STOP_COLUMNS) >= {"停保日期", "停保原因"}


def test_cell_text() -> None:
    assert cell_text(None) == ""
    assert cell_text(" 南京\u3000") == "南京"
    assert cell_text(2026.0) == "2026"
    assert cell_text(datetime(2024, 9, 1)) == "2024-09-01"
    assert cell_text(True) == "1"


def test_row_result_status_is_closed() -> None:
    assert RowResult(row_no=2, id_number=ID, status="difficulty").reason_code == ""
    with pytest.raises(ValueError):
        RowResult.model_validate({"row_no": 2, "id_number": ID, "status": "maybe"})
    with pytest.raises(ValueError):
        RowResult(row_no=0, id_number=ID, status="success")
