"""参保信息比对 contracts (F3): the records tax pushes to compare with core, and the differences.

Tax periodically pushes batches of 单位/职工/居民参保信息; the hub compares each
batch with what core holds and exports a difference report. These models are
the one definition of a comparison record, so both sides (tax's batch and
core's snapshot) are normalised by the same rules before anything is compared:
whitespace trimmed, ID numbers and credit codes upper-cased, names NFKC-folded
(full-width brackets and letters become half-width), months as ``yyyyMM``,
amounts as whole fen. Every validation failure names its field.

Layouts and rules are documented in ``contracts/RECONCILE.md``.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from enum import StrEnum
from functools import lru_cache
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from contracts.ids import NANJING_DIVISIONS, is_valid_credit_code, validate_id_number

__all__ = [
    "COMPARABLE_FIELDS",
    "DEFAULT_FIELDS",
    "DIFF_LABELS",
    "DISPLAY_FIELD",
    "FIELD_LABELS",
    "KEY_FIELDS",
    "KINDS",
    "KIND_LABELS",
    "RECORD_TYPES",
    "SIDE_LABELS",
    "BatchHeader",
    "DiffKind",
    "Difference",
    "EmployeeRecord",
    "FieldDiff",
    "FieldError",
    "ReconcileKind",
    "ReconcileRecord",
    "ReconcileSummary",
    "ResidentRecord",
    "Side",
    "UnitRecord",
    "normalise_month",
    "normalise_text",
]

ReconcileKind = Literal["unit", "employee", "resident"]
Side = Literal["tax", "core"]

KINDS: tuple[ReconcileKind, ...] = ("unit", "employee", "resident")
KIND_LABELS: dict[str, str] = {"unit": "单位参保信息", "employee": "职工参保信息",
                               "resident": "居民参保信息"}
SIDE_LABELS: dict[str, str] = {"tax": "税务", "core": "医保核心"}

_CODE = re.compile(r"^[0-9A-Za-z]{1,6}$")
_INSUTYPE = re.compile(r"^\d{3}$")
_MONTH = re.compile(r"^(\d{4})[-/.]?(\d{2})(?:[-/.]?\d{2})?$")
_COMMUNITY = re.compile(r"^\d{6}(\d{3}|\d{6})?$")
_BATCH_ID = re.compile(r"^[0-9A-Za-z_.\-]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SPACES = re.compile(r"\s+")
_MAX_FEN = 100_000_000  # 1,000,000.00 元: far above any 缴费基数


def normalise_text(value: str) -> str:
    """NFKC fold, trim and collapse inner whitespace: （南京） and (南京) compare equal."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", value)).strip()


def normalise_month(value: str) -> str:
    """``yyyyMM`` from yyyyMM, yyyy-MM, yyyy/MM or a full date; refuses a month outside 1-12."""
    m = _MONTH.match(value.strip())
    if not m or not 1 <= int(m.group(2)) <= 12 or not 1900 <= int(m.group(1)) <= 2100:
        raise ValueError("must be a month yyyyMM (yyyy-MM accepted)")
    return m.group(1) + m.group(2)


def _plain(value: object) -> object:
    """Numbers from a spreadsheet cell become their text (202301 -> "202301")."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if isinstance(value, int) else value


def _name(value: str) -> str:
    v = normalise_text(value)
    if not v:
        raise ValueError("must not be empty")
    if _CONTROL.search(v) or any(c.isdigit() for c in v):
        raise ValueError("must not contain digits or control characters")
    return v


def _optional_name(value: str) -> str:
    return value if not value else _name(value)


_credit_code_reason = lru_cache(maxsize=65_536)(is_valid_credit_code)
"""Employees of one unit repeat its code: check each code once per process."""


def _uscc(value: str) -> str:
    v = value.strip().upper()
    if reason := _credit_code_reason(v):
        raise ValueError(reason)
    return v


def _code(value: str) -> str:
    if not _CODE.match(value):
        raise ValueError("must be a code of 1-6 letters or digits")
    return value


def _cert_type(value: object) -> object:
    """Blank means 居民身份证 (01); "1" is read as "01" like contracts.employee."""
    if isinstance(value, (int, str)):
        v = str(value).strip()
        return "01" if not v else v.zfill(2) if v.isdigit() and len(v) == 1 else v
    return value


def _id_number(value: str, info: ValidationInfo) -> str:
    """ID numbers of 居民身份证 (01) must carry a valid GB 11643 checksum; others are trimmed."""
    v = value.strip().upper()
    if info.data.get("cert_type", "01") == "01":
        if reason := validate_id_number(v):
            raise ValueError(reason)
    elif not v or _CONTROL.search(v) or len(v) > 40:
        raise ValueError("must be 1-40 characters without control characters")
    return v


def _fen(value: object) -> object:
    """Whole fen only: "350000" or 350000 (or 350000.0 from a spreadsheet), never "3500.00"."""
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number of fen (分)")
        return int(value)
    if isinstance(value, str):
        v = value.strip()
        if not v.isdigit():
            raise ValueError("must be a whole number of fen (分), e.g. 350000 for 3500.00 元")
        return int(v)
    return value


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    @property
    def key(self) -> tuple[str, ...]:
        """The natural key, in the order of ``KEY_FIELDS`` for this record's kind."""
        raise NotImplementedError


class UnitRecord(_Record):
    """单位参保信息: one unit as tax or core holds it; keyed by 统一社会信用代码."""

    kind: Literal["unit"] = "unit"
    uscc: str = Field(description="统一社会信用代码")
    unit_name: str = Field(max_length=200, description="单位名称")
    legal_rep_name: str = Field(default="", max_length=60, description="法定代表人姓名")
    insured_status: str = Field(description="参保状态 code")
    start_month: str = Field(description="参保开始年月 yyyyMM")
    pay_status: str = Field(default="", description="缴费状态 code (blank when not held)")

    _v_uscc = field_validator("uscc")(_uscc)
    _v_unit_name = field_validator("unit_name")(_name)
    _v_rep = field_validator("legal_rep_name")(_optional_name)
    _v_plain = field_validator("insured_status", "pay_status", "start_month",
                               mode="before")(_plain)
    _v_status = field_validator("insured_status")(_code)
    _v_month = field_validator("start_month")(normalise_month)

    @field_validator("pay_status")
    @classmethod
    def _pay_status(cls, v: str) -> str:
        return v if not v else _code(v)

    @property
    def key(self) -> tuple[str, ...]:
        return (self.uscc,)


class EmployeeRecord(_Record):
    """职工参保信息: one employee of one unit; keyed by 统一社会信用代码 + 证件号码."""

    kind: Literal["employee"] = "employee"
    uscc: str = Field(description="参保单位统一社会信用代码")
    cert_type: str = Field(default="01", description="证件类型 (01 居民身份证)")
    id_number: str = Field(description="证件号码")
    name: str = Field(max_length=60, description="姓名")
    insutype: str = Field(description="险种 (310 职工基本医疗保险 ...)")
    insured_status: str = Field(description="参保状态 code")
    start_month: str = Field(description="参保开始年月 yyyyMM")
    pay_base: int = Field(ge=0, le=_MAX_FEN, description="缴费基数 in fen")

    _v_uscc = field_validator("uscc")(_uscc)
    _v_cert = field_validator("cert_type", mode="before")(_cert_type)
    _v_cert_code = field_validator("cert_type")(_code)
    _v_id = field_validator("id_number")(_id_number)
    _v_name = field_validator("name")(_name)
    _v_plain = field_validator("insutype", "insured_status", "start_month",
                               mode="before")(_plain)
    _v_status = field_validator("insured_status")(_code)
    _v_month = field_validator("start_month")(normalise_month)
    _v_fen = field_validator("pay_base", mode="before")(_fen)

    @field_validator("insutype")
    @classmethod
    def _insutype(cls, v: str) -> str:
        if not _INSUTYPE.match(v):
            raise ValueError("must be a 3-digit 险种 code such as 310")
        return v

    @property
    def key(self) -> tuple[str, ...]:
        return (self.uscc, self.id_number)


class ResidentRecord(_Record):
    """居民参保信息: one resident; keyed by 证件号码."""

    kind: Literal["resident"] = "resident"
    cert_type: str = Field(default="01", description="证件类型 (01 居民身份证)")
    id_number: str = Field(description="证件号码")
    name: str = Field(max_length=60, description="姓名")
    community_code: str = Field(description="基层医保区划: 街道(9位)或社区(12位)代码")
    psn_type: str = Field(description="人员类别 (参保身份) code")
    insured_status: str = Field(description="参保状态 code")
    insu_year: int = Field(ge=2000, le=2100, description="参保年度")

    _v_cert = field_validator("cert_type", mode="before")(_cert_type)
    _v_cert_code = field_validator("cert_type")(_code)
    _v_id = field_validator("id_number")(_id_number)
    _v_name = field_validator("name")(_name)
    _v_plain = field_validator("community_code", "psn_type", "insured_status",
                               mode="before")(_plain)
    _v_codes = field_validator("psn_type", "insured_status")(_code)

    @field_validator("insu_year", mode="before")
    @classmethod
    def _year(cls, v: object) -> object:
        return v.strip() if isinstance(v, str) else v

    @field_validator("community_code")
    @classmethod
    def _community(cls, v: str) -> str:
        if not _COMMUNITY.match(v):
            raise ValueError("must be a 9- or 12-digit division code (6 digits for a district)")
        if v[:6] not in NANJING_DIVISIONS:
            raise ValueError(f"{v[:6]} is not a Nanjing division code")
        return v

    @property
    def key(self) -> tuple[str, ...]:
        return (self.id_number,)


ReconcileRecord = UnitRecord | EmployeeRecord | ResidentRecord

RECORD_TYPES: dict[str, type[UnitRecord] | type[EmployeeRecord] | type[ResidentRecord]] = {
    "unit": UnitRecord, "employee": EmployeeRecord, "resident": ResidentRecord,
}
KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "unit": ("uscc",), "employee": ("uscc", "id_number"), "resident": ("id_number",),
}
DISPLAY_FIELD: dict[str, str] = {"unit": "unit_name", "employee": "name", "resident": "name"}
"""The field a caseworker recognises a record by (shown in every report row)."""

COMPARABLE_FIELDS: dict[str, tuple[str, ...]] = {
    kind: tuple(f for f in cls.model_fields if f != "kind" and f not in KEY_FIELDS[kind])
    for kind, cls in RECORD_TYPES.items()
}
"""Every non-key field of a kind: what may be listed in a comparison's field list."""

DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "unit": ("unit_name", "legal_rep_name", "insured_status", "start_month", "pay_status"),
    "employee": ("cert_type", "name", "insutype", "insured_status", "start_month", "pay_base"),
    "resident": ("cert_type", "name", "community_code", "psn_type", "insured_status",
                 "insu_year"),
}

FIELD_LABELS: dict[str, str] = {
    "uscc": "统一社会信用代码",
    "unit_name": "单位名称",
    "legal_rep_name": "法定代表人姓名",
    "insured_status": "参保状态",
    "start_month": "参保开始年月",
    "pay_status": "缴费状态",
    "cert_type": "证件类型",
    "id_number": "证件号码",
    "name": "姓名",
    "insutype": "险种",
    "pay_base": "缴费基数(分)",
    "community_code": "基层医保区划",
    "psn_type": "人员类别",
    "insu_year": "参保年度",
}
"""Chinese labels: report headers, and accepted as input column names beside the field names."""


class DiffKind(StrEnum):
    ONLY_AT_TAX = "only_at_tax"
    ONLY_IN_CORE = "only_in_core"
    FIELD_MISMATCH = "field_mismatch"
    INVALID = "invalid"
    DUPLICATE = "duplicate"


DIFF_LABELS: dict[str, str] = {
    DiffKind.ONLY_AT_TAX: "税务有、核心无",
    DiffKind.ONLY_IN_CORE: "核心有、税务无",
    DiffKind.FIELD_MISMATCH: "字段不一致",
    DiffKind.INVALID: "数据无效",
    DiffKind.DUPLICATE: "主键重复",
}


class BatchHeader(BaseModel):
    """The header of one comparison batch pushed by tax (批次号, 类别, 截止日期, 记录数)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    batch_id: str = Field(description="税务批次号")
    kind: ReconcileKind
    as_of: date = Field(description="数据截止日期: the state both sides are compared at")
    record_count: int = Field(ge=0, le=50_000_000, description="records tax says it sent")

    @field_validator("batch_id")
    @classmethod
    def _batch_id(cls, v: str) -> str:
        if not _BATCH_ID.match(v):
            raise ValueError("must be 1-64 letters, digits, '_', '-' or '.'")
        return v


class FieldDiff(BaseModel):
    """One field's value on each side (blank where that side has no record)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str
    tax_value: str = ""
    core_value: str = ""


class FieldError(BaseModel):
    """Why an input record is invalid: the field, the reason and the value as received."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str
    reason: str
    value: str = ""


class Difference(BaseModel):
    """One row of the difference report.

    * ``only_at_tax`` / ``only_in_core``: ``fields`` carries the compared
      values of the side that has the record.
    * ``field_mismatch``: ``fields`` carries only the differing fields, both values.
    * ``invalid``: ``errors`` names every bad field; ``side`` and ``row`` locate it.
    * ``duplicate``: a second record with the same key on ``side``; the
      first occurrence (``other_row``) is the one compared.

    ``row`` is the 1-based position of the record in its ``side``'s input;
    ``other_row`` is, for a mismatch, the core record's position (``side`` is
    tax then) and, for a duplicate, the position of the first record with the key.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ReconcileKind
    diff: DiffKind
    key: tuple[str, ...] = Field(description="natural key values, in KEY_FIELDS order")
    name: str = Field(default="", description="姓名 or 单位名称, to recognise the record")
    side: Side | None = None
    row: int | None = Field(default=None, ge=1)
    other_row: int | None = Field(default=None, ge=1)
    fields: tuple[FieldDiff, ...] = ()
    errors: tuple[FieldError, ...] = ()
    note: str = ""

    @model_validator(mode="after")
    def _shape(self) -> Difference:
        if self.diff is DiffKind.FIELD_MISMATCH and not self.fields:
            raise ValueError("a field_mismatch names at least one field")
        if self.diff is DiffKind.INVALID and not self.errors:
            raise ValueError("an invalid record names at least one field error")
        if self.diff in (DiffKind.INVALID, DiffKind.DUPLICATE) and self.side is None:
            raise ValueError(f"{self.diff.value} needs the side it was found on")
        return self

    @property
    def key_text(self) -> str:
        return "/".join(self.key)


class ReconcileSummary(BaseModel):
    """Counts of one comparison run: what the summary sheet and the CLI print.

    ``matched`` records have the key on both sides, split into ``identical``
    and ``field_mismatch``; ``field_counts`` counts mismatches per field.
    ``complete`` is false while the difference stream is still being read.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ReconcileKind
    fields: tuple[str, ...]
    batch_id: str = ""
    as_of: date | None = None
    declared_tax_records: int | None = None
    tax_records: int = 0
    core_records: int = 0
    matched: int = 0
    identical: int = 0
    field_mismatch: int = 0
    only_at_tax: int = 0
    only_in_core: int = 0
    invalid_tax: int = 0
    invalid_core: int = 0
    duplicate_tax: int = 0
    duplicate_core: int = 0
    field_counts: dict[str, int] = Field(default_factory=dict)
    complete: bool = False

    @property
    def differences(self) -> int:
        """Records that need a caseworker's look (everything but identical)."""
        return (self.field_mismatch + self.only_at_tax + self.only_in_core + self.invalid_tax
                + self.invalid_core + self.duplicate_tax + self.duplicate_core)

    @property
    def count_mismatch(self) -> bool:
        """Tax's header promised a different number of records than arrived."""
        return (self.declared_tax_records is not None
                and self.declared_tax_records != self.tax_records)
