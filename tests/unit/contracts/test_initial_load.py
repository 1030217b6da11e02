"""contracts.initial_load: each kind's row rules, reported by Chinese column and reason."""

from __future__ import annotations

import random
from datetime import date

import pytest

from contracts.errors import ValidationFailed
from contracts.ids import make_credit_code, make_id_number
from contracts.initial_load import (
    COLUMNS,
    EmployeeLoadRow,
    EmployeeSuspendRow,
    FlexibleLoadRow,
    ResidentLoadRow,
    UnitLoadRow,
    load_headers,
    validate_load_row,
)

TODAY = date(2026, 11, 30)
RNG = random.Random(3)
ID = make_id_number(RNG, born=date(1988, 5, 6))
USCC = make_credit_code(RNG)


def errors(kind: str, values: dict[str, object]) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as err:
        validate_load_row(kind, values, today=TODAY)  # type: ignore[arg-type]
    return dict(err.value.errors)


def test_a_unit_row_normalises_its_cells() -> None:
    row = validate_load_row("unit", {
        "credit_code": USCC.lower(), "unit_name": "南京某某有限公司", "unit_type": 10,
        "legal_rep": "", "division": "320102", "insutypes": "510、310",
        "start_month": date(2020, 1, 1)}, today=TODAY)
    assert isinstance(row, UnitLoadRow)
    assert (row.key, row.label, row.insutypes, row.start_month) == \
        (USCC, "南京某某有限公司", ("310", "510"), "202001")


def test_a_unit_row_names_every_bad_cell() -> None:
    bad = USCC[:17] + ("1" if USCC[17] != "1" else "2")
    got = errors("unit", {"credit_code": bad, "unit_name": "1", "unit_type": "x",
                          "division": "110101", "insutypes": "510", "start_month": "2030-01"})
    assert set(got) == {"统一社会信用代码", "单位名称", "单位类型", "所属区划", "参保险种",
                        "参保开始年月"}
    assert got["统一社会信用代码"].startswith("校验位应为")
    assert "310" in got["参保险种"] and "晚于本月" in got["参保开始年月"]


def test_an_employee_row_keeps_the_base_in_fen_and_checks_the_id() -> None:
    row = validate_load_row("employee", {
        "credit_code": USCC, "id_number": ID, "name": "张三", "insutype": "职工基本医疗保险",
        "start_month": "2021-03", "contribution_base": "6,500.5", "phone": ""}, today=TODAY)
    assert isinstance(row, EmployeeLoadRow)
    assert (row.insutype, row.contribution_base, row.key) == ("310", 650050, ID)
    got = errors("employee", {"credit_code": USCC, "id_number": float(ID[:17]) * 10,
                              "name": "张3", "insutype": "999", "start_month": "2021-13",
                              "contribution_base": "0", "phone": "12345"})
    assert set(got) == {"身份证号", "姓名", "险种类型", "参保开始年月", "缴费基数", "手机号"}
    assert "Excel" in got["身份证号"]


def test_a_flexible_row_needs_all_five_assessment_cells() -> None:
    got = errors("flexible", {"id_number": ID, "name": "李四"})
    assert set(got) == {"核定方式", "开始年月", "结束年月", "险种类型", "离退休标志"}
    assert set(got.values()) == {"必填，不能为空"}
    got = errors("flexible", {"id_number": ID, "name": "李四", "assess_mode": "01",
                              "start_month": "202405", "end_month": "202401",
                              "insutype": "310", "retired": "退休"})
    assert got == {"结束年月": "202401 早于开始年月 202405"}
    row = validate_load_row("flexible", {"id_number": ID, "name": "李四", "assess_mode": "1",
                                         "start_month": "202401", "end_month": "202412",
                                         "insutype": "310", "retired": "在职"}, today=TODAY)
    assert isinstance(row, FlexibleLoadRow) and (row.assess_mode, row.retired) == ("01", "0")


def test_a_resident_row_checks_community_type_and_year() -> None:
    got = errors("resident", {"id_number": ID, "name": "王五", "community": "110101001001",
                              "resident_type": "学生", "insure_year": "2020"})
    assert set(got) == {"基层医保区划", "参保身份", "参保年度"}
    row = validate_load_row("resident", {"id_number": ID, "name": "王五",
                                         "community": "320102001001", "resident_type": "成年居民",
                                         "insure_year": 2027}, today=TODAY)
    assert isinstance(row, ResidentLoadRow) and row.resident_type == "13"


def test_a_suspension_row_takes_the_reason_by_code_or_label() -> None:
    row = validate_load_row("employee_suspend", {
        "credit_code": USCC, "id_number": ID, "name": "赵六", "suspend_date": "2026/11/01",
        "suspend_reason": "终止（解除）劳动关系", "remark": ""}, today=TODAY)
    assert isinstance(row, EmployeeSuspendRow)
    assert (row.suspend_date, row.suspend_reason) == (date(2026, 11, 1), "05")
    got = errors("employee_suspend", {"credit_code": USCC, "id_number": ID, "name": "赵六",
                                      "suspend_date": "2028-01-01", "suspend_reason": "跳槽"})
    assert set(got) == {"中断日期", "中断原因"}


def test_headers_accept_aliases_and_refuse_a_missing_column() -> None:
    hm = load_headers("employee_suspend", ["单位统一社会信用代码", "身份证号码", "姓名",
                                           "暂停日期", "暂停原因(必填)", "其他"])
    assert hm.fields == ("credit_code", "id_number", "name", "suspend_date", "suspend_reason",
                         None)
    assert hm.ignored == ("其他",)
    with pytest.raises(ValidationFailed) as err:
        load_headers("unit", list(COLUMNS["unit"])[:3])
    assert err.value.errors == [("表头", "缺少必填列：所属区划、参保险种、参保开始年月")]
