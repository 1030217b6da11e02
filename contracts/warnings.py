"""F8 高额费用预警 (high-expense warnings): the contracts, as data and pure builders.

Seed 003, lines 1537-1567. Once a month the hub asks core for each person's
yearly 个人自付 (after 基本医保 and 大病保险; core infno H1107), computes two lists
(``jobs.warnings``) and sends each department (入口审定部门) the people in its remit,
one message per department, month and person, on the department's own lane
(``routes.warnings``). Layout and readings: ``contracts/WARNINGS.md``.

    warnings.<department>   one person of a month's list, to that department

Identifiers are derived, never drawn: ``warning_id`` and ``warning_serial`` from
department + month + ID number, so a month run twice (or resumed after a crash)
names the same facts and a department deduplicates on the serial.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from decimal import Decimal
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.envelope import HubMessage, idempotency_key

__all__ = [
    "CATEGORIES",
    "DEPARTMENTS",
    "KINDS",
    "LOW_INCOME",
    "MONTH_RE",
    "PARTNER_PREFIX",
    "ExpenseWarning",
    "RunRequest",
    "SelfPaid",
    "Thresholds",
    "department_of_type",
    "lane_type",
    "parse_month",
    "warning_id",
    "warning_message",
    "warning_serial",
]

Department = Literal["civil_affairs", "agriculture", "veterans", "union"]
DEPARTMENTS: Final[dict[str, str]] = {
    "civil_affairs": "民政局", "agriculture": "农业农村局", "veterans": "退役军人事务局",
    "union": "总工会",
}
"""The departments F8 sends to (seed 1562, 1567), by the hub's name for each."""

Kind = Literal["poverty", "relapse"]
KINDS: Final[dict[str, str]] = {"poverty": "因病致贫", "relapse": "因病返贫"}

CATEGORIES: Final[dict[str, str]] = {
    "rural_low_income": "农村低收入人口",
    "former_registered": "原建档立卡对象",
    "dibao": "低保对象",
    "dibao_edge": "低保边缘",
    "tekun": "特困人员",
    "veteran": "优抚对象/退役军人",
    "union_hardship": "困难职工",
}
"""The person categories core reports with the 自付 figure (H1107 ``psn_types``)."""

LOW_INCOME: Final = frozenset({"rural_low_income", "dibao", "dibao_edge", "tekun"})
"""Categories that make a person part of the 低收入人口 (seed 1567's "纳入低收入人口")."""

PARTNER_PREFIX: Final = "dept."
MONTH_RE: Final = re.compile(r"^(20[0-9]{2})(0[1-9]|1[0-2])$")


def parse_month(month: str) -> tuple[int, int]:
    """``YYYYMM`` as (year, month); ValueError naming what is wrong."""
    m = MONTH_RE.match(month)
    if not m:
        raise ValueError(f"month {month!r} is not YYYYMM (2000-2099, 01-12)")
    return int(m.group(1)), int(m.group(2))


class SelfPaid(BaseModel):
    """One person's yearly 个人自付 as core reports it (H1107), in canonical names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id_number: str = Field(min_length=15, max_length=18)
    name: str = Field(min_length=1, max_length=60)
    rural: bool
    """农村居民 (True) or 城镇居民 (False): which line applies."""
    insurance: Literal["employee", "resident", "none"]
    """职工医保, 城乡居民医保, or not insured (seed 1567: 在保、退保 alike)."""
    self_paid: Decimal = Field(ge=0, max_digits=14, decimal_places=2)
    """Yearly 个人自付 up to the month asked, after 基本医保 and 大病保险 (yuan)."""
    categories: tuple[str, ...] = ()

    @field_validator("categories")
    @classmethod
    def _known(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if bad := [c for c in v if c not in CATEGORIES]:
            raise ValueError(f"unknown category {bad[0]!r}; one of {', '.join(CATEGORIES)}")
        return tuple(sorted(set(v)))


class Thresholds(BaseModel):
    """The lines of one monitored year (yuan per year), urban and rural.

    ``*_income``: the previous year's 城镇/农村居民人均可支配收入 (因病致贫, 1562);
    ``*_dibao``: the year's 最低生活保障标准 as a yearly amount (因病返贫, 1567).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    urban_income: Decimal = Field(gt=0)
    rural_income: Decimal = Field(gt=0)
    urban_dibao: Decimal = Field(gt=0)
    rural_dibao: Decimal = Field(gt=0)

    def income(self, rural: bool) -> Decimal:
        return self.rural_income if rural else self.urban_income

    def dibao(self, rural: bool) -> Decimal:
        return self.rural_dibao if rural else self.urban_dibao


class ExpenseWarning(BaseModel):
    """One person on one department's list for one month."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    department: Department
    month: str = Field(pattern=MONTH_RE.pattern)
    person: SelfPaid
    kinds: tuple[Kind, ...] = Field(min_length=1)
    line: Decimal
    """The lowest line the person passed (yuan), for the department's reading."""

    @property
    def id(self) -> str:
        return warning_id(self.department, self.month, self.person.id_number)

    @property
    def serial(self) -> str:
        return warning_serial(self.department, self.month, self.person.id_number)


class RunRequest(BaseModel):
    """``POST /admin/warnings/runs``: the month to run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    month: str = Field(pattern=MONTH_RE.pattern, description="YYYYMM")

    @field_validator("month")
    @classmethod
    def _not_future(cls, v: str) -> str:
        year, month = parse_month(v)
        today = date.today()
        if (year, month) > (today.year, today.month):
            raise ValueError(f"month {v} has not started")
        return v


def warning_id(department: str, month: str, id_number: str) -> str:
    """The stored row of one person on one department's list of one month."""
    return hashlib.sha256(f"warning:{department}:{month}:{id_number}".encode()).hexdigest()[:32]


def warning_serial(department: str, month: str, id_number: str) -> str:
    """The serial (业务流水号) the department deduplicates on: department + month + person,
    so a 补发 reaches the department under the same serial (it replays its answer)."""
    return "YJ" + hashlib.sha256(
        f"warning-serial:{department}:{month}:{id_number}".encode()).hexdigest()[:30].upper()


def lane_type(department: str) -> str:
    """The message type (and lane) of a department's warnings."""
    return f"warnings.{department}"


def department_of_type(type_: str) -> str:
    return type_.removeprefix("warnings.")


def warning_message(w: ExpenseWarning, *, salt: str = "") -> HubMessage:
    """The message of one warning. Its key is department + month + person only (not the
    figure): running the month again, with core's figure moved meanwhile, is the same fact.
    ``salt`` (a 补发's id) makes a resend a new attempt on purpose."""
    type_ = lane_type(w.department)
    payload: dict[str, Any] = {
        "warning_id": w.id, "serial": w.serial, "department": w.department, "month": w.month,
        "kinds": list(w.kinds), "line": str(w.line),
        "person": w.person.model_dump(mode="json"),
    }
    return HubMessage(type=type_, source="hub", target=f"{PARTNER_PREFIX}{w.department}",
                      correlation_id=w.id,
                      idempotency_key=idempotency_key(
                          type_, f"{w.department}:{w.month}:{w.person.id_number}", {}, salt),
                      payload=payload)
