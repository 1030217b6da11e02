"""Row contracts of the 统模式 initial load (存量数据批量同步) and of 职工批量暂停.

When 税务统模式 starts, the records the core already holds are loaded into tax
in batches, one file per kind (seed 003, lines 2037-2059): 单位 (``unit``),
职工 (``employee``), 灵活就业 (``flexible``) and 居民 (``resident``); 职工批量暂停
(``employee_suspend``, seed line 1658) is the same kind of file job. What each
kind carries, and why, is ``contracts/INITIAL_LOAD.md``.

Cells are read and reported exactly like the student batches
(``contracts.student_batch``: Chinese column names and reasons, every bad cell
of a row at once); the cell normalisers and the header matcher are that
module's, reused here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Final, Literal, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from contracts.ids import NANJING_DIVISIONS, credit_code_check
from contracts.student_batch import (
    _MOBILE,
    _YEAR,
    HEADER_ALIASES,
    MAX_CHUNK_ROWS,
    HeaderMap,
    _code,
    _community,
    _id_number,
    _month,
    _name,
    _remark,
    _required,
    _stop_date,
    _title,
    _today,
    cell_text,
    column_errors,
    match_headers,
)

__all__ = [
    "ASSESS_MODES",
    "COLUMNS",
    "DEFAULT_CHUNK_ROWS",
    "INSURANCE_TYPES",
    "KINDS",
    "KIND_LABELS",
    "LOAD_HEADER_ALIASES",
    "MAX_CHUNK_ROWS",
    "RESIDENT_TYPES",
    "RETIRED_FLAGS",
    "SUSPEND_REASONS",
    "EmployeeLoadRow",
    "EmployeeSuspendRow",
    "FlexibleLoadRow",
    "LoadKind",
    "LoadResult",
    "LoadRow",
    "ResidentLoadRow",
    "UnitLoadRow",
    "load_headers",
    "model_for",
    "validate_load_row",
]

LoadKind = Literal["unit", "employee", "flexible", "resident", "employee_suspend"]
KINDS: Final[tuple[LoadKind, ...]] = ("unit", "employee", "flexible", "resident",
                                      "employee_suspend")
KIND_LABELS: Final[dict[LoadKind, str]] = {
    "unit": "批量处理单位基本参保信息",
    "employee": "批量处理职工基本参保信息",
    "flexible": "批量处理灵活基本参保信息",
    "resident": "批量处理居民基本参保信息",
    "employee_suspend": "参保人员暂停缴费（批量模式）",
}
DEFAULT_CHUNK_ROWS: Final = 500
"""Rows per chunk by default; at most ``MAX_CHUNK_ROWS`` (1000), like the student batches."""

INSURANCE_TYPES: Final[dict[str, str]] = {
    "310": "职工基本医疗保险",
    "320": "公务员医疗补助",
    "330": "大额医疗费用补助",
    "510": "生育保险",
}
"""险种类型 of units, employees and flexible workers (tax's ``xzlx``, ``contracts.taxcat``)."""

ASSESS_MODES: Final[dict[str, str]] = {
    "01": "按上年度全市职工月平均工资核定",
    "02": "按本人申报缴费基数核定",
    "03": "按缴费基数下限核定",
}
"""灵活就业 核定方式 (hub-owned code table until tax publishes its own; tax's ``hdfs``)."""

RETIRED_FLAGS: Final[dict[str, str]] = {"0": "在职", "1": "退休"}
"""离退休标志 (tax's ``ltxbz``)."""

RESIDENT_TYPES: Final[dict[str, str]] = {
    "11": "学生儿童",
    "12": "大学生",
    "13": "成年居民",
    "14": "老年居民",
    "15": "新生儿",
}
"""居民参保身份 (hub-owned code table; tax's ``rylb``)."""

SUSPEND_REASONS: Final[dict[str, str]] = {
    "01": "入伍",
    "02": "入学",
    "03": "辞退除名",
    "04": "劳改劳教",
    "05": "终止（解除）劳动关系",
    "99": "其他",
}
"""职工暂停缴费 中断原因 (seed line 1656; tax's ``zdyy``)."""

COLUMNS: Final[dict[LoadKind, dict[str, str]]] = {
    "unit": {
        "统一社会信用代码": "credit_code",
        "单位名称": "unit_name",
        "单位类型": "unit_type",
        "法定代表人": "legal_rep",
        "所属区划": "division",
        "参保险种": "insutypes",
        "参保开始年月": "start_month",
    },
    "employee": {
        "统一社会信用代码": "credit_code",
        "身份证号": "id_number",
        "姓名": "name",
        "险种类型": "insutype",
        "参保开始年月": "start_month",
        "缴费基数": "contribution_base",
        "手机号": "phone",
    },
    "flexible": {
        "身份证号": "id_number",
        "姓名": "name",
        "核定方式": "assess_mode",
        "开始年月": "start_month",
        "结束年月": "end_month",
        "险种类型": "insutype",
        "离退休标志": "retired",
    },
    "resident": {
        "身份证号": "id_number",
        "姓名": "name",
        "基层医保区划": "community",
        "参保身份": "resident_type",
        "参保年度": "insure_year",
        "手机号": "phone",
    },
    "employee_suspend": {
        "统一社会信用代码": "credit_code",
        "身份证号": "id_number",
        "姓名": "name",
        "中断日期": "suspend_date",
        "中断原因": "suspend_reason",
        "备注": "remark",
    },
}
"""Template header of each kind -> field of its row model."""

LOAD_HEADER_ALIASES: Final[dict[str, str]] = {
    **HEADER_ALIASES,
    "单位统一社会信用代码": "统一社会信用代码", "社会信用代码": "统一社会信用代码",
    "信用代码": "统一社会信用代码",
    "险种": "险种类型", "参保险种类型": "险种类型",
    "开始参保年月": "参保开始年月", "参保年月": "参保开始年月",
    "缴费工资": "缴费基数", "人员类别": "参保身份", "居民类别": "参保身份",
    "暂停日期": "中断日期", "暂停缴费日期": "中断日期", "中断缴费日期": "中断日期",
    "暂停原因": "中断原因", "暂停缴费原因": "中断原因", "中断缴费原因": "中断原因",
    "行政区划": "所属区划", "区划": "所属区划", "法人姓名": "法定代表人",
}
"""Header spellings -> the canonical column (the student aliases included)."""

_UNIT_TYPE = re.compile(r"^\d{2,4}$")
_CREDIT_ALPHABET: Final = frozenset("0123456789ABCDEFGHJKLMNPQRTUWXY")
_MAX_BASE_YUAN: Final = 1_000_000


# ---------------------------------------------------------------- cell rules

def _credit_code(value: object) -> str:
    text = _required(value).upper()
    if len(text) != 18:
        raise ValueError(f"应为18位，实际{len(text)}位")
    bad = [c for c in text if c not in _CREDIT_ALPHABET]
    if bad:
        raise ValueError(f"含不允许的字符 {bad[0]!r}（不用 I、O、S、V、Z）")
    check = credit_code_check(text[:17])
    if check != text[17]:
        raise ValueError(f"校验位应为 {check}，实际为 {text[17]}")
    return text


def _past_month(value: object, info: ValidationInfo) -> str:
    """A year and month (``_month``) not after this month: a record that exists already."""
    month, today = _month(value), _today(info)
    if month > f"{today:%Y%m}":
        raise ValueError(f"{month} 晚于本月（{today:%Y%m}）：存量数据只能是已发生的参保")
    return month


def _phone(value: object) -> str:
    text = cell_text(value).replace(" ", "").replace("-", "")
    if text and not _MOBILE.match(text):
        raise ValueError(f"{text} 不是11位手机号（应以13-19开头）")
    return text


def _insutype(value: object) -> str:
    _required(value)
    return _code(value, INSURANCE_TYPES, "险种类型")


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @property
    def key(self) -> str:
        """The identity tax keys its effect on (ID number; a unit's credit code)."""
        return str(getattr(self, "id_number", ""))

    @property
    def label(self) -> str:
        """The name shown beside the key in the result files."""
        return str(getattr(self, "name", ""))


class UnitLoadRow(_Row):
    """单位基本信息和参保信息 (seed 2037-2038): one unit registered at tax."""

    credit_code: str = Field(description="统一社会信用代码 (GB 32100 check character)")
    unit_name: str = Field(description="单位名称")
    unit_type: str = Field(description="单位类型: 2-4 digit code of the core")
    legal_rep: str = Field(default="", description="法定代表人 (optional)")
    division: str = Field(description="所属区划: a Nanjing division, 6 digits")
    insutypes: tuple[str, ...] = Field(description="参保险种: codes of INSURANCE_TYPES")
    start_month: str = Field(description="参保开始年月 yyyyMM, not after this month")

    @property
    def key(self) -> str:
        return self.credit_code

    @property
    def label(self) -> str:
        return self.unit_name

    _credit = field_validator("credit_code", mode="before")(_credit_code)

    @field_validator("unit_name", mode="before")
    @classmethod
    def _unit_name(cls, v: object) -> str:
        return _title(v, "单位名称")

    @field_validator("unit_type", mode="before")
    @classmethod
    def _unit_type(cls, v: object) -> str:
        text = _required(v)
        if not _UNIT_TYPE.match(text):
            raise ValueError(f"{text} 应为2-4位单位类型代码")
        return text

    @field_validator("legal_rep", mode="before")
    @classmethod
    def _legal_rep(cls, v: object) -> str:
        return _name(v) if cell_text(v) else ""

    @field_validator("division", mode="before")
    @classmethod
    def _division(cls, v: object) -> str:
        text = _required(v)
        if text not in NANJING_DIVISIONS:
            raise ValueError(f"{text} 不是南京市区划代码（如 320102 玄武区）")
        return text

    @field_validator("insutypes", mode="before")
    @classmethod
    def _insutypes(cls, v: object) -> tuple[str, ...]:
        parts = [p for p in re.split(r"[,，、;；/\s]+", _required(v)) if p]
        codes = sorted({_code(p, INSURANCE_TYPES, "险种类型") for p in parts})
        if "310" not in codes:
            raise ValueError("单位参保险种须包含 310 职工基本医疗保险")
        return tuple(codes)

    _start = field_validator("start_month", mode="before")(_past_month)


class EmployeeLoadRow(_Row):
    """职工基本参保信息 (seed 2042-2044): one employee of one unit."""

    credit_code: str = Field(description="单位的统一社会信用代码")
    id_number: str = Field(description="身份证号 (GB 11643)")
    name: str = Field(description="姓名")
    insutype: str = Field(description="险种类型, a key of INSURANCE_TYPES")
    start_month: str = Field(description="参保开始年月 yyyyMM")
    contribution_base: int = Field(description="缴费基数 in fen (the file has yuan)")
    phone: str = Field(default="", description="手机号 (optional)")

    _credit = field_validator("credit_code", mode="before")(_credit_code)
    _id = field_validator("id_number", mode="before")(_id_number)
    _name = field_validator("name", mode="before")(_name)
    _insutype = field_validator("insutype", mode="before")(_insutype)
    _phone = field_validator("phone", mode="before")(_phone)

    _start = field_validator("start_month", mode="before")(_past_month)

    @field_validator("contribution_base", mode="before")
    @classmethod
    def _base(cls, v: object) -> int:
        text = _required(v).replace(",", "")
        if not re.match(r"^\d+(\.\d{1,2})?$", text):
            raise ValueError(f"{text} 不是金额（元，最多两位小数）")
        fen = round(float(text) * 100)
        if not 0 < fen <= _MAX_BASE_YUAN * 100:
            raise ValueError(f"{text} 应大于0且不超过{_MAX_BASE_YUAN}元")
        return fen


class FlexibleLoadRow(_Row):
    """灵活就业人员参保信息 (seed 2048-2052): 核定方式、开始年月、结束年月、险种类型、离退休标志
    are all required (seed 2051)."""

    id_number: str = Field(description="身份证号")
    name: str = Field(description="姓名")
    assess_mode: str = Field(description="核定方式, a key of ASSESS_MODES")
    start_month: str = Field(description="开始年月 yyyyMM")
    end_month: str = Field(description="结束年月 yyyyMM, not before the start")
    insutype: str = Field(description="险种类型")
    retired: str = Field(description="离退休标志, a key of RETIRED_FLAGS")

    _id = field_validator("id_number", mode="before")(_id_number)
    _name = field_validator("name", mode="before")(_name)
    _insutype = field_validator("insutype", mode="before")(_insutype)

    @field_validator("assess_mode", mode="before")
    @classmethod
    def _assess(cls, v: object) -> str:
        _required(v)
        return _code(v, ASSESS_MODES, "核定方式")

    _start = field_validator("start_month", mode="before")(_month)

    @field_validator("end_month", mode="before")
    @classmethod
    def _end(cls, v: object, info: ValidationInfo) -> str:
        month = _month(v)
        start = info.data.get("start_month")
        if start and month < start:
            raise ValueError(f"{month} 早于开始年月 {start}")
        return month

    @field_validator("retired", mode="before")
    @classmethod
    def _retired(cls, v: object) -> str:
        text = _required(v)
        for code, label in RETIRED_FLAGS.items():
            if text in (code, label):
                return code
        raise ValueError(f"未知的离退休标志 {text!r}，应为：0 在职、1 退休")


class ResidentLoadRow(_Row):
    """城乡居民参保信息 (seed 2056-2059): one resident of one 基层医保区划."""

    id_number: str = Field(description="身份证号")
    name: str = Field(description="姓名")
    community: str = Field(description="基层医保区划: 12 digits inside a Nanjing division")
    resident_type: str = Field(description="参保身份, a key of RESIDENT_TYPES")
    insure_year: str = Field(description="参保年度 yyyy: last, this or next year")
    phone: str = Field(default="", description="手机号 (optional)")

    _id = field_validator("id_number", mode="before")(_id_number)
    _name = field_validator("name", mode="before")(_name)
    _phone = field_validator("phone", mode="before")(_phone)

    _community = field_validator("community", mode="before")(_community)

    @field_validator("resident_type", mode="before")
    @classmethod
    def _type(cls, v: object) -> str:
        _required(v)
        return _code(v, RESIDENT_TYPES, "参保身份")

    @field_validator("insure_year", mode="before")
    @classmethod
    def _year(cls, v: object, info: ValidationInfo) -> str:
        text = _required(v)
        m = _YEAR.match(text)
        if m is None:
            raise ValueError(f"{text} 不是年份，应为 yyyy")
        year, this_year = int(m.group(1)), _today(info).year
        if not this_year - 1 <= year <= this_year + 1:
            raise ValueError(f"{year} 应在 {this_year - 1}-{this_year + 1} 之间")
        return str(year)


class EmployeeSuspendRow(_Row):
    """职工批量暂停缴费 (seed 1656-1658): 中断日期、中断原因和备注 per employee."""

    credit_code: str = Field(description="单位的统一社会信用代码")
    id_number: str = Field(description="身份证号")
    name: str = Field(description="姓名")
    suspend_date: date = Field(description="中断日期: from 2000, at most one year ahead")
    suspend_reason: str = Field(description="中断原因, a key of SUSPEND_REASONS")
    remark: str = Field(default="", description="备注 (at most 200 characters)")

    _credit = field_validator("credit_code", mode="before")(_credit_code)
    _id = field_validator("id_number", mode="before")(_id_number)
    _name = field_validator("name", mode="before")(_name)

    _date = field_validator("suspend_date", mode="before")(_stop_date)

    @field_validator("suspend_reason", mode="before")
    @classmethod
    def _reason(cls, v: object) -> str:
        _required(v)
        return _code(v, SUSPEND_REASONS, "中断原因")

    _remark = field_validator("remark", mode="before")(_remark)


LoadRow = UnitLoadRow | EmployeeLoadRow | FlexibleLoadRow | ResidentLoadRow | EmployeeSuspendRow

_MODELS: Final[dict[LoadKind, type[_Row]]] = {
    "unit": UnitLoadRow, "employee": EmployeeLoadRow, "flexible": FlexibleLoadRow,
    "resident": ResidentLoadRow, "employee_suspend": EmployeeSuspendRow,
}


class LoadResult(BaseModel):
    """Tax's answer for one row: done (``ok``) or refused with a code and reason."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    row_no: int = Field(ge=1, description="row number in the file (header is row 1)")
    key: str = Field(description="ID number, or a unit's credit code")
    ok: bool
    reason_code: str = ""
    reason_text: str = ""


def model_for(kind: LoadKind) -> type[_Row]:
    return _MODELS[kind]


def load_headers(kind: LoadKind, headers: list[object] | tuple[object, ...]) -> HeaderMap:
    """A kind's header row -> where each field sits; ``ValidationFailed`` (column ``表头``)
    when a required column is missing or repeated."""
    model = _MODELS[kind]
    required = [f for f, info in model.model_fields.items() if info.is_required()]
    return match_headers(kind, COLUMNS[kind], required, headers, LOAD_HEADER_ALIASES)


def validate_load_row(kind: LoadKind, values: Mapping[str, object], *,
                      today: date | None = None) -> LoadRow:
    """One row's cells (by field name) -> a valid row; else every bad cell by Chinese column."""
    column_of = {f: c for c, f in COLUMNS[kind].items()}
    try:
        row = _MODELS[kind].model_validate(values, context={"today": today} if today else None)
    except ValidationError as exc:
        raise column_errors(exc, column_of) from None
    return cast(LoadRow, row)
