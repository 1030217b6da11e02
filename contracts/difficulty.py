"""F7 困难人员数据交互平台: the departments' monthly lists of difficulty populations.

Seed ``003`` lines 1471-1532 and 1802-1816 (readings in ``contracts/DIFFICULTY.md``).
Four departments send, each month, the people who joined (增加) or left (减少) its
populations (1507 民政, 1512 总工会, 1517 退役军人事务局, 1522 农业农村局); three
ways in share this one contract: the department's system (REST push), a batch
file (CSV/XLSX, GBK or UTF-8) and a caseworker's single-record entry.

A list is a department, a month and records. Each record is checked alone
(``check_list``): a bad row is refused with its row number, field and reason,
the good rows are kept. Identity codes come from the full table of 1477/1482
(``IDENTITIES``); a department may only send its own (``DEPARTMENT_IDENTITIES``);
the bureau's own registrations (``bureau``: caseworker entry only, 救助来源 医疗救助)
take the codes no department sends (拆迁人员, 孤儿(新), ..., 1477, 1482).

Only stdlib, pydantic and other contracts: this is the ground floor.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from contracts.employee import check_name
from contracts.envelope import HubMessage, entity_key, idempotency_key
from contracts.ids import validate_id_number
from contracts.student_batch import cell_text

__all__ = [
    "ASSISTANCE",
    "BUREAU",
    "CHANGE_LABELS",
    "COLUMNS",
    "CORE_SYNC",
    "DEPARTMENTS",
    "DEPARTMENT_IDENTITIES",
    "IDENTITIES",
    "MAX_LIST_ROWS",
    "PARTNER_PREFIX",
    "PLATFORM_PUSH",
    "SOURCES",
    "STATUS_PREFIX",
    "SUNSHINE",
    "Change",
    "DepartmentList",
    "DifficultyRecord",
    "ListCheck",
    "RowRefusal",
    "check_list",
    "check_record",
    "core_message",
    "department_of",
    "identity_label",
    "partner_of",
    "platform_message",
    "status_message",
    "status_type",
]

MAX_LIST_ROWS: Final = 20_000
"""Rows in one list (a month of 民政's 低保 changes is a few thousand in Nanjing)."""

DEPARTMENTS: Final[dict[str, str]] = {
    "civil_affairs": "民政局",
    "trade_union": "总工会",
    "veterans": "退役军人事务局",
    "agriculture": "农业农村局",
}
"""The four departments that send lists (1507, 1512, 1517, 1522), by partner name."""

PARTNER_PREFIX: Final = "difficulty_"
"""A department's partner name at the hub (``partners.difficulty_<department>``: its secret,
its status callback endpoint): ``difficulty_civil_affairs``... Not the bare department
name: the 总工会's mutual-aid system (F12) is another partner, ``trade_union``."""
ASSISTANCE: Final = "assistance"
"""The 医疗救助平台's partner name (``partners.assistance``)."""
SUNSHINE: Final = "sunshine"
"""阳光惠民's partner name (``partners.sunshine``): the 救助人员 table pushed daily (1497)."""


def partner_of(department: str) -> str:
    return f"{PARTNER_PREFIX}{department}"


BUREAU: Final = "bureau"
"""The bureau's own registrations (caseworker entry, 救助来源 医疗救助, 1482/1802)."""

IDENTITIES: Final[dict[str, str]] = {
    "01": "低保",
    "02": "城市三无",
    "03": "农村五保",
    "04": "低保边缘",
    "05": "60年代老职工",
    "06": "特困职工",
    "07": "建档立卡",
    "08": "一到六级残疾军人",
    "09": "烈士遗属及其他优抚对象中的孤儿孤老",
    "10": "非烈士遗属及其他优抚对象中的非孤儿非孤老",
    "11": "七到十级残疾军人",
    "12": "拆迁人员",
    "13": "孤儿(新)",
    "14": "重病重残儿童",
    "15": "事实无人抚养儿童",
    "16": "支出型大重病患者",
    "17": "临时救助大重病患者",
}
"""特殊身份 code -> name: the full identity table of 1477 in its order, then the two
kinds of 大重病患者 registered for 零星报销 (1482). The codes are the hub's (the seed
names the identities, not their codes); see DIFFICULTY.md."""

DEPARTMENT_IDENTITIES: Final[dict[str, frozenset[str]]] = {
    "civil_affairs": frozenset({"01", "02", "03", "04", "05"}),  # 1507
    "trade_union": frozenset({"06"}),  # 1512
    "veterans": frozenset({"08", "09", "10", "11"}),  # 1517
    "agriculture": frozenset({"07"}),  # 1522
    BUREAU: frozenset({"12", "13", "14", "15", "16", "17"}),  # 1477, 1482
}
"""Which identities each sender may send."""

SOURCES: Final[dict[str, str]] = {"1": "困难人员", "2": "医疗救助"}
"""救助来源 (1802): a department's list is 困难人员; the bureau's registrations 医疗救助."""

Change = Literal["add", "remove"]
CHANGE_LABELS: Final[dict[str, Change]] = {"增加": "add", "减少": "remove", "add": "add",
                                           "remove": "remove", "1": "add", "2": "remove"}

COLUMNS: Final[dict[str, str]] = {
    "变动类型": "change", "身份类别": "identity", "身份证号": "id_number", "姓名": "name",
    "开始时间": "start_date", "结束时间": "end_date", "联系电话": "phone",
    "救助来源": "source", "备注": "remark",
}
"""A batch file's Chinese columns -> record fields (the layout of 1802-1806 plus 变动类型)."""

_PHONE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$")
_DATE = re.compile(r"^(\d{4})[-/.年]?(\d{1,2})[-/.月]?(\d{1,2})日?$")
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def identity_label(code: str) -> str:
    return IDENTITIES.get(code, code)


def department_of(value: str) -> str | None:
    """A department's partner name from its name or label (``民政局`` -> civil_affairs)."""
    v = value.strip()
    if v in DEPARTMENTS or v == BUREAU:
        return v
    for name, label in DEPARTMENTS.items():
        if v in (label, label.removesuffix("局")):
            return name
    return None


def _as_date(value: object) -> date | None:
    if value is None or isinstance(value, date):
        return value
    text = cell_text(value)
    if not text:
        return None
    m = _DATE.match(text)
    if not m:
        raise ValueError(f"{text} is not a date (yyyy-MM-dd)")
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise ValueError(f"{text} is not a real date") from None


class DifficultyRecord(BaseModel):
    """One row of a list: a person joining (add) or leaving (remove) one identity."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    change: Change = Field(description="变动类型: add 增加 / remove 减少")
    identity: str = Field(description="特殊身份 code (IDENTITIES)")
    id_number: str = Field(description="身份证号 (GB 11643 check character)")
    name: str = Field(description="姓名")
    start_date: date = Field(description="开始时间")
    end_date: date | None = Field(default=None, description="结束时间; required for remove")
    phone: str = Field(default="", description="联系电话 (mobile or landline)")
    source: Literal["1", "2"] = Field(default="1", description="救助来源 1 困难人员 / 2 医疗救助")
    remark: str = Field(default="", max_length=200)

    @field_validator("change", mode="before")
    @classmethod
    def _change(cls, v: object) -> str:
        text = cell_text(v)
        if text not in CHANGE_LABELS:
            raise ValueError(f"unknown change {text!r}; 增加 (add) or 减少 (remove)")
        return CHANGE_LABELS[text]

    @field_validator("identity", mode="before")
    @classmethod
    def _identity(cls, v: object) -> str:
        text = cell_text(v)
        if text.isdigit() and len(text) == 1:
            text = text.zfill(2)
        if text in IDENTITIES:
            return text
        for code, label in IDENTITIES.items():
            if text == label:
                return code
        raise ValueError(f"unknown identity code {text!r} (the 1477 table: 01-17)")

    @field_validator("id_number", mode="before")
    @classmethod
    def _id_number(cls, v: object) -> str:
        text = cell_text(v).upper()
        reason = validate_id_number(text)
        if reason:
            raise ValueError(f"not a valid ID number: {reason}")
        return text

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, v: object) -> str:
        return check_name(cell_text(v))

    @field_validator("start_date", "end_date", mode="before")
    @classmethod
    def _dates(cls, v: object) -> date | None:
        return _as_date(v)

    @field_validator("phone", mode="before")
    @classmethod
    def _phone(cls, v: object) -> str:
        text = cell_text(v).replace(" ", "")
        if text and not _PHONE.match(text):
            raise ValueError("must be a mobile (11 digits, 13-19) or a landline (0xx-xxxxxxx)")
        return text

    @field_validator("source", mode="before")
    @classmethod
    def _source(cls, v: object) -> str:
        text = cell_text(v) or "1"
        for code, label in SOURCES.items():
            if text in (code, label):
                return code
        raise ValueError(f"unknown 救助来源 {text!r}; 困难人员 or 医疗救助")

    @field_validator("remark", mode="before")
    @classmethod
    def _remark(cls, v: object) -> str:
        return cell_text(v)

    @model_validator(mode="after")
    def _period(self) -> DifficultyRecord:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError(f"end_date: {self.end_date} is before start_date {self.start_date}")
        if self.change == "remove" and self.end_date is None:
            raise ValueError("end_date: a 减少 (remove) needs the date the identity ends")
        return self

    @property
    def key(self) -> str:
        """The identity held: one person, one identity."""
        return f"{self.id_number}:{self.identity}"


class DepartmentList(BaseModel):
    """What a department pushes (``POST /partners/departments/{dept}/lists``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    list_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$",
                         description="the department's id of this list; a repeat is a replay")
    month: str = Field(description="yyyy-MM the list is for")
    records: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_LIST_ROWS)

    @field_validator("month")
    @classmethod
    def _month(cls, v: str) -> str:
        if not _MONTH.match(v):
            raise ValueError("must be yyyy-MM")
        return v


@dataclass(frozen=True)
class RowRefusal:
    """A refused row: ``row`` (1-based in the list, or the file's row), field, reason."""

    row: int
    field: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "reason": self.reason}


@dataclass
class ListCheck:
    """A list checked: good rows kept (row, record), each bad row refused."""

    department: str
    month: str
    good: list[tuple[int, DifficultyRecord]] = field(default_factory=list)
    refused: list[RowRefusal] = field(default_factory=list)

    @property
    def refused_rows(self) -> int:
        return len({r.row for r in self.refused})


def _errors(exc: ValidationError, row: int) -> list[RowRefusal]:
    out = []
    for e in exc.errors():
        msg = str(e["msg"]).removeprefix("Value error, ")
        where = str(e["loc"][0]) if e["loc"] else ""
        if not where and ":" in msg:  # a whole-record check names its field first
            where, msg = (p.strip() for p in msg.split(":", 1))
        out.append(RowRefusal(row, where or "record", "required" if e["type"] == "missing"
                              else msg))
    return out


def check_record(department: str, values: Mapping[str, object], row: int = 1
                 ) -> DifficultyRecord | list[RowRefusal]:
    """One record of ``department``: the record, or why it is refused (each field)."""
    try:
        rec = DifficultyRecord.model_validate(dict(values))
    except ValidationError as exc:
        return _errors(exc, row)
    allowed = DEPARTMENT_IDENTITIES.get(department, frozenset())
    if rec.identity not in allowed:
        sender = DEPARTMENTS.get(department, department)
        return [RowRefusal(row, "identity", f"{rec.identity} {identity_label(rec.identity)} "
                           f"is not an identity {sender} sends ("
                           + "、".join(sorted(allowed)) + ")")]
    return rec


def check_list(department: str, month: str, rows: Sequence[Mapping[str, object]], *,
               row_numbers: Sequence[int] | None = None) -> ListCheck:
    """Every row of a list, alone: good rows kept, bad rows refused with row, field and
    reason. A row repeating an earlier row's person, identity and change is refused as a
    duplicate of it. An unknown department refuses the whole list (row 0, department)."""
    out = ListCheck(department, month)
    numbers = list(row_numbers) if row_numbers is not None else list(range(1, len(rows) + 1))
    if department not in DEPARTMENT_IDENTITIES:
        out.refused.append(RowRefusal(0, "department", f"unknown department {department!r}; "
                                      "one of " + ", ".join(DEPARTMENTS)))
        return out
    if not _MONTH.match(month):
        out.refused.append(RowRefusal(0, "month", "must be yyyy-MM"))
        return out
    seen: dict[tuple[str, str], int] = {}
    for row, values in zip(numbers, rows, strict=True):
        got = check_record(department, values, row)
        if isinstance(got, list):
            out.refused.extend(got)
            continue
        key = (got.key, got.change)
        if key in seen:
            out.refused.append(RowRefusal(row, "id_number", f"duplicate of row {seen[key]} "
                                          "(same person, identity and change)"))
            continue
        seen[key] = row
        out.good.append((row, got))
    return out


# ---------------------------------------------------------------- hub messages of F7

PLATFORM_PUSH: Final = "difficulty.assistance_push"
"""An approved record to the 医疗救助平台 (1527), lane ``assistance.push``."""
CORE_SYNC: Final = "difficulty.core_sync"
"""进入/退出 of an identity to core in real time (1482, H4001), lane ``core.difficulty``."""
STATUS_PREFIX: Final = "difficulty.status."
"""``difficulty.status.<department>``: 救助待遇标识同步情况 back to the department (1532)."""


def status_type(department: str) -> str:
    return f"{STATUS_PREFIX}{department}"


def _message(type_: str, target: str, business: str, payload: dict[str, Any], *,
             correlation_id: str, entity: str = "", salt: str = "") -> HubMessage:
    return HubMessage(type=type_, source="hub", target=target, correlation_id=correlation_id,
                      idempotency_key=idempotency_key(type_, business, payload, salt),
                      entity_key=entity_key("person", entity) if entity else "",
                      payload=payload)


def platform_message(payload: dict[str, Any]) -> HubMessage:
    """The push of one approved record (``payload``: record fields and ``record_id``)."""
    return _message(PLATFORM_PUSH, "assistance", str(payload["record_id"]), payload,
                    correlation_id=str(payload["record_id"]))


def core_message(payload: dict[str, Any], *, salt: str = "") -> HubMessage:
    """进入 (``action`` enter) or 退出 (exit) of one identity, ordered per person."""
    return _message(CORE_SYNC, "core", f"{payload['record_id']}:{payload['action']}", payload,
                    correlation_id=str(payload.get("case_id") or payload["record_id"]),
                    entity=str(payload["id_number"]), salt=salt)


def status_message(department: str, payload: dict[str, Any], *, salt: str = "") -> HubMessage:
    """One record's 救助待遇标识同步情况 (``status`` synced / refused, ``reason``). A 补发
    is salted with its resend id: a new delivery, while a retry of it is the same one."""
    return _message(status_type(department), partner_of(department),
                    f"{payload['record_id']}:{payload['status']}", payload,
                    correlation_id=str(payload["record_id"]), salt=salt)
