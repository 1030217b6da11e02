"""F7 医疗救助平台: the settlements of assistance recipients, as the hub reads them.

Seed ``003`` lines 1482 (按政策获取救助时间段内费用信息), 1487 (每月提取救助对象的医保费用结算
信息 ... 生成医疗救助结算数据) and 1497 (医疗费用查询; 结算费用同步; 阳光惠民: 救助费用, 机构
数据表). Readings in ``contracts/DIFFICULTY.md`` (§ 医疗救助平台).

A settlement (结算) is one core settlement of a person: its id, date, institution,
medical type and five amounts in yuan, fen-exact (``Decimal`` with two places; a
float or a third decimal is refused). The parts add up: 医疗费总额 = 基本医保统筹 +
大病保险 + 医疗救助 + 个人自付 (a settlement whose parts do not is refused naming
``medfee_sumamt``). ``Totals`` adds settlements; the monthly 医疗救助结算数据 carries
them as its header, and whoever reads it checks that the rows add up to it.

Core's wire names (the hub's own layouts of H4002-H4005, national style) are in
``SETTLEMENT_WIRE`` and ``INSTITUTION_WIRE``; ``settlement_from_wire`` turns one
record into a ``Settlement`` or the fields and reasons it is refused with.

Only stdlib, pydantic and other contracts: this is the ground floor.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from contracts.envelope import HubMessage, idempotency_key
from contracts.ids import validate_id_number

__all__ = [
    "AMOUNTS",
    "INSTITUTION_WIRE",
    "MAX_QUERY_DAYS",
    "MED_TYPES",
    "SETTLEMENT_LANE",
    "SETTLEMENT_SYNC",
    "SETTLEMENT_WIRE",
    "ExpenseQuery",
    "Institution",
    "Settlement",
    "Totals",
    "covers",
    "fen",
    "identity_at",
    "institution_from_wire",
    "month_bounds",
    "month_of",
    "page_serial",
    "parse_run_month",
    "settlement_from_wire",
    "settlement_message",
    "settlement_ref",
    "settlement_to_wire",
]

SETTLEMENT_SYNC: Final = "assistance.settlement_sync"
"""结算费用同步 (1497): one recipient's settlement core reported, to the platform."""
SETTLEMENT_LANE: Final = "assistance.settlements"
"""Its lane: ``POST <partners.assistance.endpoint>/settlements``, retried, then DLQ."""
MAX_QUERY_DAYS: Final = 366
"""The longest period one 医疗费用查询 may ask for (a year, leap day included)."""

AMOUNTS: Final = ("medfee_total", "fund_pay", "serious_illness_pay", "assistance_pay",
                  "self_pay")
"""The five amounts of a settlement, canonical names, in yuan (two decimals)."""

MED_TYPES: Final[dict[str, str]] = {
    "11": "普通门诊", "12": "门诊挂号", "13": "急诊", "14": "门诊慢特病", "21": "普通住院",
    "41": "定点药店购药", "52": "生育住院", "9901": "零星报销"}
"""医疗类别 (the national codes the hub sees most; another code is kept as it is)."""

SETTLEMENT_WIRE: Final[dict[str, str]] = {
    "setl_id": "setl_id", "certno": "id_number", "psn_name": "name", "setl_time": "settled_at",
    "fixmedins_code": "institution_code", "fixmedins_name": "institution_name",
    "med_type": "med_type", "medfee_sumamt": "medfee_total", "fund_pay_sumamt": "fund_pay",
    "hifmi_pay": "serious_illness_pay", "maf_pay": "assistance_pay", "psn_pay": "self_pay"}
"""Core's wire name -> canonical field of a settlement (H4002, H4003 records; H4005 data)."""

INSTITUTION_WIRE: Final[dict[str, str]] = {
    "fixmedins_code": "code", "fixmedins_name": "name", "fixmedins_type": "kind",
    "hosp_lv": "level", "admdvs": "division"}
"""Core's wire name -> canonical field of a 定点医疗机构 (H4004 records)."""

_CENT: Final = Decimal("0.01")
_MONTH = re.compile(r"^(\d{4})-?(0[1-9]|1[0-2])$")
_SETL_ID = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


def setl_id_text(v: object) -> str:
    """A settlement id as sent, trimmed: 1-40 of A-Z a-z 0-9 _ . - (a field validator)."""
    text = str(v or "").strip()
    if not _SETL_ID.match(text):
        raise ValueError("1-40 of A-Z a-z 0-9 _ . -")
    return text


def id_number_text(v: object) -> str:
    """An 18-character ID number, trimmed and upper-cased, its check digit right."""
    text = str(v or "").strip().upper()
    reason = validate_id_number(text)
    if reason:
        raise ValueError(f"not a valid ID number: {reason}")
    return text
_TIME_FORMATS: Final = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")


def fen(value: object, field: str = "amount") -> Decimal:
    """A yuan amount, fen-exact: a string or int (or Decimal) with at most two decimals, not
    negative. A float is refused (it is not exact), and so is a third decimal."""
    if isinstance(value, (bool, float)):
        raise ValueError(f"{field}: an amount is a string of yuan with two decimals, "
                         f"not a {type(value).__name__}")
    if isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, Decimal):
        d = value
    elif isinstance(value, str):
        try:
            d = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{field}: {value[:20]!r} is not an amount") from None
    else:
        raise ValueError(f"{field}: an amount is a string of yuan with two decimals")
    if not d.is_finite():
        raise ValueError(f"{field}: not a finite amount")
    if d != d.quantize(_CENT):
        raise ValueError(f"{field}: {d} is not fen-exact (at most two decimals)")
    if d < 0:
        raise ValueError(f"{field}: {d} is negative")
    return d.quantize(_CENT)


def month_of(day: date) -> str:
    """``yyyyMM`` of a date: a settlement belongs to the month it was settled in."""
    return f"{day.year:04d}{day.month:02d}"


def parse_run_month(value: str) -> str:
    """``yyyy-MM`` or ``yyyyMM`` -> ``yyyyMM``; ``ValueError`` otherwise."""
    m = _MONTH.match(value.strip())
    if not m:
        raise ValueError("must be yyyy-MM (or yyyyMM)")
    return m.group(1) + m.group(2)


def month_bounds(month: str) -> tuple[date, date]:
    """The first and last day of ``yyyyMM``."""
    year, mon = int(month[:4]), int(month[4:6])
    first = date(year, mon, 1)
    nxt = date(year + 1, 1, 1) if mon == 12 else date(year, mon + 1, 1)
    return first, date.fromordinal(nxt.toordinal() - 1)


def settlement_ref(setl_id: str) -> str:
    """The hub's id of a settlement: stable, not personal (阳光惠民 rows carry it)."""
    return hashlib.sha256(f"assistance-settlement:{setl_id}".encode()).hexdigest()[:32]


class Settlement(BaseModel):
    """One settlement of a person in core (结算), canonical names, amounts fen-exact."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    setl_id: str = Field(description="core's settlement id (结算ID)")
    id_number: str = Field(description="身份证号")
    name: str = Field(min_length=1, max_length=60, description="姓名")
    settled_at: datetime = Field(description="结算时间 (Beijing, no zone)")
    institution_code: str = Field(min_length=1, max_length=30, description="定点医药机构编号")
    institution_name: str = Field(default="", max_length=100)
    med_type: str = Field(min_length=1, max_length=6, description="医疗类别")
    medfee_total: Decimal = Field(description="医疗费总额")
    fund_pay: Decimal = Field(description="基本医保统筹基金支出")
    serious_illness_pay: Decimal = Field(description="大病保险支出")
    assistance_pay: Decimal = Field(description="医疗救助支出")
    self_pay: Decimal = Field(description="个人自付")

    _setl_id = field_validator("setl_id", mode="before")(setl_id_text)
    _id_number = field_validator("id_number", mode="before")(id_number_text)

    @field_validator("settled_at", mode="before")
    @classmethod
    def _settled_at(cls, v: object) -> object:
        if isinstance(v, str):
            for fmt in _TIME_FORMATS:
                try:
                    return datetime.strptime(v.strip(), fmt)
                except ValueError:
                    continue
            raise ValueError("must be yyyy-MM-dd HH:mm:ss")
        return v

    @field_validator(*AMOUNTS, mode="before")
    @classmethod
    def _amount(cls, v: object, info: ValidationInfo) -> Decimal:
        return fen(v, str(info.field_name))

    @model_validator(mode="after")
    def _parts_add_up(self) -> Settlement:
        parts = self.fund_pay + self.serious_illness_pay + self.assistance_pay + self.self_pay
        if parts != self.medfee_total:
            raise ValueError(f"medfee_total: {self.medfee_total} is not the sum of its parts "
                             f"({parts}: 统筹 + 大病 + 救助 + 自付)")
        return self

    @property
    def setl_date(self) -> date:
        return self.settled_at.date()

    @property
    def month(self) -> str:
        return month_of(self.setl_date)

    @property
    def ref(self) -> str:
        return settlement_ref(self.setl_id)

    def amounts(self) -> dict[str, str]:
        """The five amounts as strings (``"123.45"``): JSON keeps them exact."""
        return {k: f"{getattr(self, k):.2f}" for k in AMOUNTS}


def _reason(err: Mapping[str, Any]) -> str:
    return "required" if err.get("type") == "missing" else \
        str(err.get("msg", "")).removeprefix("Value error, ")


def settlement_from_wire(record: Mapping[str, Any], where: str = "record"
                         ) -> Settlement | list[tuple[str, str]]:
    """One settlement in core's wire names -> ``Settlement``, or ``(field, reason)`` each
    named by core's wire name under ``where``; an unknown field is an error (the hub owns
    this layout)."""
    back = {v: k for k, v in SETTLEMENT_WIRE.items()}
    errors = [(f"{where}.{k}", "unknown field") for k in record if k not in SETTLEMENT_WIRE]
    values = {SETTLEMENT_WIRE[k]: v for k, v in record.items() if k in SETTLEMENT_WIRE}
    try:
        s = Settlement.model_validate(values)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            name = str(err["loc"][0]) if err["loc"] else ""
            msg = _reason(err)
            if not name and ":" in msg:  # a whole-record check names its field first
                name, msg = (p.strip() for p in msg.split(":", 1))
            if name in AMOUNTS and msg.startswith(f"{name}:"):
                msg = msg.split(":", 1)[1].strip()
            errors.append((f"{where}.{back.get(name, name or 'record')}", msg))
        return errors
    return errors or s


def settlement_to_wire(s: Settlement) -> dict[str, Any]:
    """A settlement in core's wire names (the core simulator answers with it)."""
    canonical: dict[str, Any] = {
        "setl_id": s.setl_id, "id_number": s.id_number, "name": s.name,
        "settled_at": s.settled_at.strftime("%Y-%m-%d %H:%M:%S"),
        "institution_code": s.institution_code, "institution_name": s.institution_name,
        "med_type": s.med_type, **s.amounts()}
    return {wire: canonical[field] for wire, field in SETTLEMENT_WIRE.items()}


@dataclass(frozen=True)
class Institution:
    """A 定点医疗机构 of core's list (H4004), for 阳光惠民's 机构 table (public data)."""

    code: str
    name: str
    kind: str = ""
    level: str = ""
    division: str = ""

    def as_row(self) -> dict[str, str]:
        return {"code": self.code, "name": self.name, "kind": self.kind, "level": self.level,
                "division": self.division}


def institution_from_wire(record: Mapping[str, Any], where: str = "record"
                          ) -> Institution | list[tuple[str, str]]:
    values = {INSTITUTION_WIRE[k]: str(v or "").strip()[:100] for k, v in record.items()
              if k in INSTITUTION_WIRE}
    errors = [(f"{where}.{k}", "unknown field") for k in record if k not in INSTITUTION_WIRE]
    for wire in ("fixmedins_code", "fixmedins_name"):
        if not values.get(INSTITUTION_WIRE[wire]):
            errors.append((f"{where}.{wire}", "required"))
    if errors:
        return errors
    return Institution(**values)


@dataclass(frozen=True)
class Totals:
    """A header of settlements: how many, and each amount summed (Decimal, fen-exact)."""

    count: int
    medfee_total: Decimal = Decimal("0.00")
    fund_pay: Decimal = Decimal("0.00")
    serious_illness_pay: Decimal = Decimal("0.00")
    assistance_pay: Decimal = Decimal("0.00")
    self_pay: Decimal = Decimal("0.00")

    @classmethod
    def of(cls, rows: Iterable[Settlement | Mapping[str, Any]]) -> Totals:
        """The totals of settlements, or of rows holding the five amounts as strings."""
        sums = dict.fromkeys(AMOUNTS, Decimal("0.00"))
        n = 0
        for r in rows:
            n += 1
            for k in AMOUNTS:
                sums[k] += getattr(r, k) if isinstance(r, Settlement) else fen(r[k], k)
        return cls(n, **sums)

    @classmethod
    def from_wire(cls, header: Mapping[str, Any]) -> Totals:
        """Core's header (``count`` and the wire names of the amounts)."""
        back = {v: k for k, v in SETTLEMENT_WIRE.items()}
        count = header.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValueError("header.count: must be a whole number")
        return cls(count, **{k: fen(header.get(back[k]), f"header.{back[k]}")
                             for k in AMOUNTS})

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, **{k: f"{getattr(self, k):.2f}" for k in AMOUNTS}}

    def to_wire(self) -> dict[str, Any]:
        back = {v: k for k, v in SETTLEMENT_WIRE.items()}
        return {"count": self.count, **{back[k]: f"{getattr(self, k):.2f}" for k in AMOUNTS}}

    def differences(self, other: Totals) -> list[str]:
        """Where ``other`` differs from these (empty: they agree to the fen)."""
        return [f"{k}: {getattr(self, k)} != {getattr(other, k)}"
                for k in ("count", *AMOUNTS) if getattr(self, k) != getattr(other, k)]


class ExpenseQuery(BaseModel):
    """医疗费用查询 (1497): the platform asks for a recognised person's expenses in a period."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    id_number: str = Field(min_length=18, max_length=18)
    start_date: date
    end_date: date

    @field_validator("id_number")
    @classmethod
    def _id(cls, v: str) -> str:
        v = v.upper()
        reason = validate_id_number(v)
        if reason:
            raise ValueError(f"not a valid ID number: {reason}")
        return v

    @model_validator(mode="after")
    def _period(self) -> ExpenseQuery:
        if self.end_date < self.start_date:
            raise ValueError(f"end_date: {self.end_date} is before start_date {self.start_date}")
        if (self.end_date - self.start_date).days >= MAX_QUERY_DAYS:
            raise ValueError(f"end_date: a period of at most {MAX_QUERY_DAYS} days")
        return self


def settlement_message(payload: dict[str, Any]) -> HubMessage:
    """结算费用同步 of one settlement (``payload``: the settlement, its ``ref`` and the
    identity the person held that day): one business fact per settlement id."""
    return HubMessage(type=SETTLEMENT_SYNC, source="core", target="assistance",
                      correlation_id=str(payload["ref"]),
                      idempotency_key=idempotency_key(SETTLEMENT_SYNC, str(payload["setl_id"]),
                                                      payload),
                      payload=payload)


def page_serial(kind: str, key: str, refs: Iterable[str]) -> str:
    """The serial of a page pushed outside a lane (阳光惠民's tables, a month's 医疗救助结算
    数据): derived from what it carries, so the same page again is a replay."""
    return hashlib.sha256(f"{kind}:{key}:".encode() + ",".join(refs).encode()).hexdigest()[:32]


def identity_at(held: Iterable[Mapping[str, Any]], day: date) -> Mapping[str, Any] | None:
    """The assistance identity a person held on ``day`` (救助历史, 1487), of the identities
    the hub holds for them (rows with ``identity``, ``start_date``, ``end_date``,
    ``active``, ``is_primary``): one whose period covers the day, the one carrying the
    treatment first, then the lowest code. None: the person was not a recipient that day."""
    covering = [h for h in held if covers(h, day)]
    covering.sort(key=lambda h: (not h.get("is_primary"), str(h.get("identity"))))
    return covering[0] if covering else None


def covers(h: Mapping[str, Any], day: date) -> bool:
    """Whether a held identity's period covers ``day``: from its start to its end (an
    identity in force without an end covers every day from its start)."""
    start, end = h.get("start_date"), h.get("end_date")
    if not isinstance(start, date) or day < start:
        return False
    if isinstance(end, date):
        return day <= end
    return bool(h.get("active"))
