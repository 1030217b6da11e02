"""Row contracts of 大学生批量参保 and 大学生批量暂停 (student batches sent by universities).

Universities fill a template (XLSX or CSV) with Chinese headers and thousands
of rows. The people who fix the rows read Chinese, so every rule here reports
the Chinese column name (``身份证号``, ``手机号`` ...) and a Chinese reason;
``validate_row`` raises ``ValidationFailed([(column, reason), ...])`` naming
every bad cell of the row at once, so one round of corrections is enough.

Cells arrive as whatever openpyxl or csv produced (str, int, float, date,
datetime, None); the validators normalise them, and catch the classic Excel
accident of an 18-digit ID number stored as a number (digits already lost).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from contracts.clock import today_beijing
from contracts.employee import check_name
from contracts.errors import ValidationFailed
from contracts.ids import NANJING_DIVISIONS, birth_date_of, gender_of, id_check_char

__all__ = [
    "DIFFICULTY_TYPES",
    "ENROLL_COLUMNS",
    "HEADER_ALIASES",
    "MAX_CHUNK_ROWS",
    "MAX_FILE_COLUMNS",
    "MAX_FILE_ROWS",
    "MAX_XLSX_MEMBERS",
    "MAX_XLSX_RATIO",
    "MAX_XLSX_UNZIPPED_BYTES",
    "STOP_COLUMNS",
    "STOP_REASONS",
    "XLSX_RATIO_GRACE_BYTES",
    "BatchOp",
    "HeaderMap",
    "RowError",
    "RowResult",
    "RowStatus",
    "StudentEnrollRow",
    "StudentRow",
    "StudentStopRow",
    "cell_text",
    "column_errors",
    "columns_for",
    "map_headers",
    "match_headers",
    "validate_row",
]

BatchOp = Literal["enroll", "stop"]
RowStatus = Literal["success", "failure", "difficulty"]
MAX_CHUNK_ROWS: Final = 1000
"""Rows per chunk the tax schema accepts (``student_batch.xsd``)."""

# What a university's file may be: limits a reader checks before (XLSX archive) and while
# (rows, columns) it reads, so a zip bomb or a million-row sheet costs neither memory nor
# minutes. Module constants, not settings: they describe the file format agreed with the
# universities, and the largest intake of a Nanjing university is well inside them.
MAX_FILE_ROWS: Final = 50_000
"""Rows of a file, the header and blank rows included (a sheet row number past this is
refused: openpyxl would otherwise pad a stray cell at row 1,048,576 with a million rows)."""
MAX_FILE_COLUMNS: Final = 100
"""Columns read of each row; cells further right are not read (the templates have 12)."""
MAX_XLSX_UNZIPPED_BYTES: Final = 100 * 1024 * 1024
"""The sum of an XLSX archive's members' declared sizes (zip ``file_size``). A full
50,000-row file is about 50 MB unzipped; zipfile never inflates a member past its
declared size (it fails the CRC instead), so this bounds what openpyxl can read."""
MAX_XLSX_RATIO: Final = 100
"""Unzipped : zipped size of one member, checked above ``XLSX_RATIO_GRACE_BYTES`` (the
defaults of Apache POI's ZipSecureFile: a min inflate ratio of 0.01 after 100 KiB)."""
XLSX_RATIO_GRACE_BYTES: Final = 100 * 1024
MAX_XLSX_MEMBERS: Final = 1_000
"""Members of the archive (an XLSX has a dozen or two): bounds the zip directory that
zipfile reads into memory before anything else."""


ENROLL_COLUMNS: Final[dict[str, str]] = {
    "学校名称": "school_name",
    "院校代码": "school_code",
    "学号": "student_no",
    "身份证号": "id_number",
    "姓名": "name",
    "性别": "gender",
    "出生日期": "birth_date",
    "手机号": "phone",
    "入学年月": "enroll_month",
    "参保年度": "insure_year",
    "基层医保区划": "community",
    "困难人员类别": "difficulty_type",
}
"""Template header of 大学生批量参保 -> field of ``StudentEnrollRow``."""

STOP_COLUMNS: Final[dict[str, str]] = {
    "身份证号": "id_number",
    "姓名": "name",
    "停保日期": "stop_date",
    "停保原因": "stop_reason",
    "备注": "remark",
}
"""Template header of 大学生批量暂停 -> field of ``StudentStopRow``."""

HEADER_ALIASES: Final[dict[str, str]] = {
    "身份证号码": "身份证号", "公民身份号码": "身份证号", "证件号码": "身份证号",
    "手机号码": "手机号", "移动电话": "手机号", "联系电话": "手机号",
    "学校代码": "院校代码", "学校标识码": "院校代码",
    "院校名称": "学校名称", "高校名称": "学校名称", "学校": "学校名称",
    "入学时间": "入学年月", "参保年份": "参保年度",
    "基层医保区划代码": "基层医保区划", "社区代码": "基层医保区划",
    "困难类别": "困难人员类别", "困难人员类型": "困难人员类别",
    "暂停日期": "停保日期", "暂停参保日期": "停保日期",
    "暂停原因": "停保原因", "暂停参保原因": "停保原因",
}
"""Header spellings seen in university templates -> the canonical column."""

DIFFICULTY_TYPES: Final[dict[str, str]] = {
    "01": "特困供养人员",
    "02": "低保对象",
    "03": "低保边缘家庭成员",
    "04": "防返贫监测对象",
    "05": "孤儿",
    "06": "重度残疾人",
    "99": "其他困难人员",
}
"""困难人员类别 (hub-owned code table); the cell may hold the code or the label."""

STOP_REASONS: Final[dict[str, str]] = {
    "01": "毕业",
    "02": "退学",
    "03": "转学",
    "04": "参军入伍",
    "05": "出国（境）",
    "06": "死亡",
    "99": "其他",
}
"""大学生停保原因 (tax's ``tbyy`` of StudentBatchStop); code or label accepted."""

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_SCHOOL_CODE = re.compile(r"^\d{5}$|^\d{10}$")
_STUDENT_NO = re.compile(r"^[A-Za-z0-9_\-]{1,30}$")
_COMMUNITY = re.compile(r"^\d{12}$")
_MONTH = re.compile(r"^((?:19|20)\d{2})\s*[-/.年]?\s*(\d{1,2})\s*月?$")
_DATE = re.compile(r"^((?:19|20)\d{2})\s*[-/.年]?\s*(\d{1,2})\s*[-/.月]?\s*(\d{1,2})\s*日?"
                   r"(?:[ T]00:00(?::00)?)?$")
_YEAR = re.compile(r"^((?:19|20)\d{2})\s*年?$")
_GENDERS: Final = {"1": "1", "2": "2", "男": "1", "女": "2", "M": "1", "F": "2"}
_REQUIRED: Final = "必填，不能为空"


# ---------------------------------------------------------------- cell normalisation

def cell_text(value: object) -> str:
    """A cell as trimmed text: integral floats lose their ``.0``, dates become ISO text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip().replace("\u3000", "")
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() \
            else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def _required(value: object) -> str:
    text = cell_text(value)
    if not text:
        raise ValueError(_REQUIRED)
    return text


def _as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _required(value)
    m = _DATE.match(text) or (re.match(r"^(\d{4})(\d{2})(\d{2})$", text))
    if m:
        try:
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            raise ValueError(f"{text} 不是有效日期") from None
    raise ValueError(f"{text} 不是日期，应为 yyyy-MM-dd")


def _today(info: ValidationInfo) -> date:
    ctx = info.context if isinstance(info.context, dict) else {}
    today = ctx.get("today")
    return today if isinstance(today, date) else today_beijing()


def _code(value: object, table: Mapping[str, str], what: str) -> str:
    text = cell_text(value)
    if text.isdigit() and len(text) == 1:
        text = text.zfill(2)
    if text in table:
        return text
    for code, label in table.items():
        if text == label:
            return code
    choices = "、".join(f"{c} {label}" for c, label in table.items())
    raise ValueError(f"未知的{what} {text!r}，应为：{choices}")


def _id_number(value: object) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) >= 1e14:
        raise ValueError("在 Excel 中被存成了数字，后几位已丢失；请把该列设为文本格式后重新填写")
    text = _required(value).upper()
    if len(text) != 18:
        raise ValueError(f"应为18位，实际{len(text)}位")
    if not text[:17].isdigit() or not (text[17].isdigit() or text[17] == "X"):
        raise ValueError("应为17位数字加1位数字或X")
    try:
        birth_date_of(text)
    except ValueError:
        raise ValueError(f"出生日期 {text[6:14]} 不是有效日期") from None
    check = id_check_char(text[:17])
    if check != text[17]:
        raise ValueError(f"校验位应为 {check}，实际为 {text[17]}")
    return text


def _name(value: object) -> str:
    try:
        return check_name(_required(value))
    except ValueError as exc:
        if str(exc) == _REQUIRED:
            raise
        raise ValueError("须为2-30个汉字（可含·）或拉丁字母姓名，不能含数字或特殊字符") from None


def _title(value: object, what: str) -> str:
    """A name of an organisation (学校名称, 单位名称): 2-100 characters, not only digits."""
    text = _required(value)
    if not 2 <= len(text) <= 100 or text.isdigit():
        raise ValueError(f"应为2-100个字符的{what}")
    return text


def _month(value: object) -> str:
    """A year and month (a date cell, yyyyMM, yyyy-MM, yyyy年M月) as yyyyMM."""
    if isinstance(value, (date, datetime)):
        return f"{value:%Y%m}"
    text = _required(value)
    m = _MONTH.match(text)
    if m is None or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(f"{text} 不是年月，应为 yyyyMM 或 yyyy-MM")
    return f"{m.group(1)}{int(m.group(2)):02d}"


def _community(value: object) -> str:
    """基层医保区划: 12 digits inside a Nanjing division."""
    text = _required(value)
    if not _COMMUNITY.match(text):
        raise ValueError(f"{text} 应为12位基层医保区划代码")
    if text[:6] not in NANJING_DIVISIONS:
        raise ValueError(f"{text} 不在南京市区划内（前6位 {text[:6]}）")
    return text


def _stop_date(value: object, info: ValidationInfo) -> date:
    """A date a stop (停保, 暂停缴费) takes effect: from 2000, at most one year ahead."""
    given = _as_date(value)
    today = _today(info)
    if given.year < 2000:
        raise ValueError(f"{given} 早于2000年")
    try:
        latest = today.replace(year=today.year + 1)
    except ValueError:  # 29 February
        latest = today.replace(year=today.year + 1, day=28)
    if given > latest:
        raise ValueError(f"{given} 超过一年以后（最晚 {latest}）")
    return given


def _remark(value: object) -> str:
    """备注: at most 200 characters."""
    text = cell_text(value)
    if len(text) > 200:
        raise ValueError(f"最多200个字符，实际{len(text)}个")
    return text


# ---------------------------------------------------------------- row models

class StudentEnrollRow(BaseModel):
    """One row of 大学生批量参保: a student enrolled in resident insurance by the university.

    ``gender`` and ``birth_date`` are derived from the ID number when the cell
    is empty, and must agree with it when given (the seed's rule).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    school_name: str = Field(description="学校名称")
    school_code: str = Field(description="院校代码: 5-digit code or 10-digit 学校标识码")
    student_no: str = Field(description="学号")
    id_number: str = Field(description="身份证号 (GB 11643, checksum verified)")
    name: str = Field(description="姓名")
    gender: Literal["1", "2"] = Field(default=None, validate_default=True,
                                      description="性别: 1 male, 2 female")
    birth_date: date = Field(default=None, validate_default=True, description="出生日期")
    phone: str = Field(description="手机号")
    enroll_month: str = Field(description="入学年月 yyyyMM")
    insure_year: str = Field(description="参保年度 yyyy: this year or next")
    community: str = Field(description="基层医保区划: 12 digits inside a Nanjing division")
    difficulty_type: str | None = Field(default=None,
                                        description="困难人员类别, a key of DIFFICULTY_TYPES")

    @field_validator("school_name", mode="before")
    @classmethod
    def _school_name(cls, v: object) -> str:
        return _title(v, "学校名称")

    @field_validator("school_code", mode="before")
    @classmethod
    def _school_code(cls, v: object) -> str:
        text = _required(v)
        if not _SCHOOL_CODE.match(text):
            raise ValueError(f"{text} 应为5位院校代码或10位学校标识码")
        return text

    @field_validator("student_no", mode="before")
    @classmethod
    def _student_no(cls, v: object) -> str:
        text = _required(v)
        if not _STUDENT_NO.match(text):
            raise ValueError("应为1-30位字母、数字、-或_")
        return text

    _id = field_validator("id_number", mode="before")(_id_number)
    _name = field_validator("name", mode="before")(_name)

    @field_validator("gender", mode="before")
    @classmethod
    def _gender(cls, v: object, info: ValidationInfo) -> str:
        id_number = info.data.get("id_number")
        derived = gender_of(id_number) if id_number else None
        text = cell_text(v).upper()
        if not text:
            return derived or "1"  # a bad ID already fails the row; nothing to derive
        given = _GENDERS.get(text)
        if given is None:
            raise ValueError(f"{text} 不是性别，应为 男/女 或 1/2")
        if derived and given != derived:
            raise ValueError(f"与身份证号不符（身份证号为{'男' if derived == '1' else '女'}）")
        return given

    @field_validator("birth_date", mode="before")
    @classmethod
    def _birth(cls, v: object, info: ValidationInfo) -> date:
        id_number = info.data.get("id_number")
        derived = birth_date_of(id_number) if id_number else None
        if cell_text(v) == "":
            return derived or date(2000, 1, 1)  # a bad ID already fails the row
        given = _as_date(v)
        if derived and given != derived:
            raise ValueError(f"{given} 与身份证号不符（身份证号为 {derived}）")
        return given

    @field_validator("phone", mode="before")
    @classmethod
    def _phone(cls, v: object) -> str:
        text = _required(v).replace(" ", "").replace("-", "")
        if not _MOBILE.match(text):
            raise ValueError(f"{text} 不是11位手机号（应以13-19开头）")
        return text

    @field_validator("enroll_month", mode="before")
    @classmethod
    def _enroll_month(cls, v: object) -> str:
        return _month(v)

    @field_validator("insure_year", mode="before")
    @classmethod
    def _insure_year(cls, v: object, info: ValidationInfo) -> str:
        text = _required(v)
        m = _YEAR.match(text)
        if m is None:
            raise ValueError(f"{text} 不是年份，应为 yyyy")
        year, this_year = int(m.group(1)), _today(info).year
        if year not in (this_year, this_year + 1):
            raise ValueError(f"{year} 应为当年（{this_year}）或次年（{this_year + 1}）")
        month = info.data.get("enroll_month")
        if month and int(month[:4]) > year:
            raise ValueError(f"{year} 早于入学年份 {month[:4]}")
        return str(year)

    _community = field_validator("community", mode="before")(_community)

    @field_validator("difficulty_type", mode="before")
    @classmethod
    def _difficulty(cls, v: object) -> str | None:
        if cell_text(v) == "":
            return None
        return _code(v, DIFFICULTY_TYPES, "困难人员类别")


class StudentStopRow(BaseModel):
    """One row of 大学生批量暂停 (e.g. 毕业停保): stop a student's resident insurance."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id_number: str = Field(description="身份证号")
    name: str = Field(description="姓名")
    stop_date: date = Field(description="停保日期: at most one year ahead")
    stop_reason: str = Field(description="停保原因, a key of STOP_REASONS")
    remark: str = Field(default="", description="备注")

    _id = field_validator("id_number", mode="before")(_id_number)
    _name = field_validator("name", mode="before")(_name)

    _stop_date = field_validator("stop_date", mode="before")(_stop_date)

    @field_validator("stop_reason", mode="before")
    @classmethod
    def _stop_reason(cls, v: object) -> str:
        _required(v)
        return _code(v, STOP_REASONS, "停保原因")

    _remark = field_validator("remark", mode="before")(_remark)


StudentRow = StudentEnrollRow | StudentStopRow


class RowError(BaseModel):
    """One bad cell of one row, as the failure report shows it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    row_no: int = Field(ge=1, description="row number in the file (header is row 1)")
    column: str = Field(description="Chinese column name, or 整行 for the whole row")
    reason: str


class RowResult(BaseModel):
    """Tax's answer for one submitted row: success, failure (with reason) or 困难人员."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    row_no: int = Field(ge=1)
    id_number: str
    status: RowStatus
    reason_code: str = ""
    reason_text: str = ""


# ---------------------------------------------------------------- headers and rows

def columns_for(op: BatchOp) -> dict[str, str]:
    """Chinese header -> field for one operation."""
    return ENROLL_COLUMNS if op == "enroll" else STOP_COLUMNS


def _model(op: BatchOp) -> type[StudentEnrollRow] | type[StudentStopRow]:
    return StudentEnrollRow if op == "enroll" else StudentStopRow


def _normalise_header(value: object) -> str:
    text = re.sub(r"\s+", "", cell_text(value)).strip("*＊")
    text = text.replace("（", "(").replace("）", ")")
    return re.sub(r"\(.*\)$", "", text)  # "身份证号(必填)" -> "身份证号"


@dataclass(frozen=True)
class HeaderMap:
    """Where each field sits in the file: ``fields[i]`` is the field of column i or None.

    ``op`` is the file's kind: a ``BatchOp`` here, a ``LoadKind`` of ``contracts.initial_load``.
    """

    op: str
    headers: tuple[str, ...]
    fields: tuple[str | None, ...]
    ignored: tuple[str, ...]

    def values(self, cells: Sequence[object]) -> dict[str, object]:
        """A row's cells by field name (short rows are padded with None)."""
        out: dict[str, object] = {}
        for i, name in enumerate(self.fields):
            if name is not None:
                out[name] = cells[i] if i < len(cells) else None
        return out


def map_headers(op: BatchOp, headers: Sequence[object]) -> HeaderMap:
    """Read a header row; a missing required column or a repeated one fails the whole file."""
    model = _model(op)
    return match_headers(op, columns_for(op), [f for f, info in model.model_fields.items()
                                               if info.is_required()], headers)


def match_headers(kind: str, columns: Mapping[str, str], required: Collection[str],
                  headers: Sequence[object],
                  aliases: Mapping[str, str] = HEADER_ALIASES) -> HeaderMap:
    """A header row against a template (Chinese column -> field, ``required`` fields); a
    missing required column or a repeated one fails the whole file (column ``表头``).
    Shared by the student batches and ``contracts.initial_load``."""
    names = tuple(cell_text(h) for h in headers)
    fields: list[str | None] = []
    ignored: list[str] = []
    seen: dict[str, str] = {}
    errors: list[tuple[str, str]] = []
    for raw, header in zip(names, (_normalise_header(h) for h in headers), strict=True):
        column = aliases.get(header, header)
        field = columns.get(column)
        if field is None:
            if raw:
                ignored.append(raw)
            fields.append(None)
            continue
        if field in seen:
            errors.append(("表头", f"列 {column} 出现了两次（{seen[field]} 和 {raw}）"))
        seen[field] = raw
        fields.append(field)
    missing = [c for c, f in columns.items() if f not in seen and f in required]
    if missing:
        errors.append(("表头", "缺少必填列：" + "、".join(missing)))
    if errors:
        raise ValidationFailed(errors)
    return HeaderMap(kind, names, tuple(fields), tuple(ignored))


def _reason(err: Any) -> str:
    if err["type"] == "missing":
        return _REQUIRED
    return str(err["msg"]).removeprefix("Value error, ")


def validate_row(op: BatchOp, values: Mapping[str, object], *,
                 today: date | None = None) -> StudentEnrollRow | StudentStopRow:
    """One row's cells (by field name) -> a valid row; else every bad cell by Chinese column."""
    column_of = {f: c for c, f in columns_for(op).items()}
    try:
        return _model(op).model_validate(values, context={"today": today} if today else None)
    except ValidationError as exc:
        raise column_errors(exc, column_of) from None


def column_errors(exc: ValidationError, column_of: Mapping[str, str]) -> ValidationFailed:
    """A row model's errors as ``ValidationFailed`` naming each Chinese column (``column_of``:
    field -> column; an error of no field is the whole row, ``整行``)."""
    return ValidationFailed([
        (column_of.get(str(e["loc"][0]), str(e["loc"][0])) if e["loc"] else "整行", _reason(e))
        for e in exc.errors()
    ])
