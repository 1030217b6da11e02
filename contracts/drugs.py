"""F11 线上购药: orders of the online drug mall, the pharmacy ERP, the supervision platform.

Seed ``003`` lines 2979-3351 (readings in ``contracts/DRUG_SALES.md``). The online mall
(线上购药平台, partner ``drug_mall``) asks the hub to accept an order; the hub's sale
gate decides (``gate_refusals`` and the prescription check ``prescription_refusals``):

    3270-3271  处方药 flag per drug, synced from core (``CatalogueDrug``)
    3280       医保资格: the person is insured and normal at core (``Eligibility``)
    3310       单次购药量: a quantity limit per drug and order
    3325-3326  a 处方药 sells only on a prescription the center holds, valid, for this person
    3330-3331  stock: an order may not take a pharmacy's stock below zero

then the order is paid (3069), taken by the pharmacy (接单 3155), shipped (发货 3160),
received (确认收货, automatically after N days, 3084) or returned and refunded (3089,
3165); each day's sales are reconciled with the pharmacy ERP (对账 3170) and every paid
order and its 用药情况 goes to the supervision platform (3336).

Money is ``Decimal`` with at most two places (fen-exact, never a float); a total must
equal the sum of its lines to the fen. Only stdlib, pydantic and other contracts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from contracts.clock import BEIJING
from contracts.employee import check_name
from contracts.envelope import HubMessage, entity_key, idempotency_key
from contracts.ids import validate_id_number

__all__ = [
    "ERP_EVENTS",
    "MALL",
    "MAX_ITEMS",
    "ORDER_STATUSES",
    "PHARMACY",
    "PHARMACY_ORDER",
    "PHARMACY_REFUND",
    "PRESCRIPTION",
    "RETURN_KINDS",
    "SUPERVISION",
    "SUPERVISION_ORDER",
    "SUPERVISION_REFUND",
    "CatalogueDrug",
    "DrugOrder",
    "Eligibility",
    "OrderItem",
    "PaidNotice",
    "PharmacyEvent",
    "ReconLine",
    "ReconResult",
    "ReconTotals",
    "ReturnRequest",
    "RxRef",
    "StockLine",
    "StockPush",
    "eligibility_refusal",
    "fen",
    "gate_refusals",
    "money",
    "money_text",
    "pharmacy_message",
    "prescription_refusals",
    "reconcile",
    "refusals",
    "stock_refusals",
    "supervision_message",
]

MALL: Final = "drug_mall"
"""The online-sale channel's partner name (线上购药平台: 网上商城, 3003-3109)."""
PHARMACY: Final = "pharmacy_erp"
"""The pharmacy ERP's partner name (药房ERP, 3330-3331)."""
SUPERVISION: Final = "supervision"
"""The 医保监管平台's partner name (3335-3336)."""
PRESCRIPTION: Final = "prescription"
"""The 电子处方中心's partner name (3325-3326; ``adapters.prescription``)."""

PHARMACY_ORDER: Final = "drugs.pharmacy.order"
"""A paid order to its pharmacy's ERP for 接单 (3155), lane ``pharmacy.orders``."""
PHARMACY_REFUND: Final = "drugs.pharmacy.refund"
"""A 退货退款 request to the pharmacy's ERP (3089, 3165), lane ``pharmacy.orders``."""
SUPERVISION_ORDER: Final = "drugs.supervision.order"
"""A paid order and its 用药情况 to the supervision platform (3336), lane
``supervision.push``."""
SUPERVISION_REFUND: Final = "drugs.supervision.refund"
"""A refunded order to the supervision platform (its 用药情况 withdrawn)."""

MAX_ITEMS: Final = 50
"""Lines in one order."""
ORDER_STATUSES: Final = ("created", "paid", "accepted", "shipped", "received",
                         "return_requested", "refunded", "erp_rejected")
"""An order's life: created (the gate passed, stock held) -> paid (3069) -> accepted (接单)
-> shipped (发货) -> received (确认收货, by the buyer or after N days); a return
(return_requested) ends refunded (stock given back); an order the ERP refuses ends
erp_rejected (stock given back, the buyer refunded by the payment platform)."""
RETURN_KINDS: Final[dict[str, str]] = {
    "wrong_order": "下错订单", "not_wanted": "不想购买", "out_of_stock": "药店缺货",
    "other": "其他"}
"""Why a buyer returns an order (3089)."""
ERP_EVENTS: Final = ("accepted", "shipped", "refunded", "rejected")
"""What the ERP tells the hub of an order: 接单, 发货, 退款 done, refused (缺货...)."""

_ORDER_NO = r"^[A-Za-z0-9_-]{6,40}$"
_PHARMACY = r"^[A-Z0-9]{6,20}$"
_DRUG_CODE = r"^[A-Z0-9]{6,30}$"
_PHONE = re.compile(r"^1[3-9]\d{9}$")
_CENT = Decimal("0.01")
MAX_MONEY: Final = Decimal("1000000")


# ---------------------------------------------------------------- money

def money(value: object) -> Decimal:
    """A money amount: a string or int (a float is refused: it may not be fen-exact), at
    most two decimal places, not negative, under a million yuan."""
    if isinstance(value, bool | float):
        raise ValueError("must be a decimal string such as \"12.50\", not a float")
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount") from None
    if not d.is_finite():
        raise ValueError("must be a finite amount")
    if d != d.quantize(_CENT):
        raise ValueError(f"{d} has more than two decimal places (fen)")
    if d < 0:
        raise ValueError("may not be negative")
    if d >= MAX_MONEY:
        raise ValueError(f"{d} is over {MAX_MONEY}")
    return d.quantize(_CENT)


def money_text(d: Decimal) -> str:
    """``Decimal`` -> ``"12.50"`` (what the wire and the store carry)."""
    return f"{d.quantize(_CENT):f}"


def fen(d: Decimal) -> int:
    return int((d * 100).to_integral_value())


def _id_number(v: object) -> str:
    text = str(v or "").strip().upper()
    reason = validate_id_number(text)
    if reason:
        raise ValueError(f"not a valid ID number: {reason}")
    return text


# ---------------------------------------------------------------- orders (mall -> hub)

class RxRef(BaseModel):
    """Which prescription an order's 处方药 are sold on (the center's ``hiRxno``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    hi_rxno: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
    rx_trace_code: str = Field(default="", max_length=40, pattern=r"^[A-Za-z0-9_-]*$")


class OrderItem(BaseModel):
    """One line: a drug by its national code (医保药品代码), how many, at what unit price."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    drug_code: str = Field(pattern=_DRUG_CODE, description="national drug code (med_list_codg)")
    name: str = Field(min_length=1, max_length=80)
    quantity: int = Field(ge=1, le=9999, description="packages (盒/瓶)")
    unit_price: Decimal = Field(description="yuan, two places at most")

    @field_validator("unit_price", mode="before")
    @classmethod
    def _price(cls, v: object) -> Decimal:
        d = money(v)
        if d == 0:
            raise ValueError("must be more than zero")
        return d

    @property
    def amount(self) -> Decimal:
        return (self.unit_price * self.quantity).quantize(_CENT)


class DrugOrder(BaseModel):
    """What the mall asks the hub to accept (购药下单, 3064)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    order_no: str = Field(pattern=_ORDER_NO, description="the mall's order number; a repeat "
                          "is the same order")
    pharmacy_code: str = Field(pattern=_PHARMACY, description="定点药店 code")
    id_number: str = Field(description="the buyer's ID number (医保 person)")
    name: str
    phone: str = ""
    items: list[OrderItem] = Field(min_length=1, max_length=MAX_ITEMS)
    total: Decimal
    prescription: RxRef | None = None
    delivery: Literal["ship", "pickup"] = Field(default="ship", description="发货 or 线下提货")
    address: str = Field(default="", max_length=200)

    @field_validator("id_number", mode="before")
    @classmethod
    def _id(cls, v: object) -> str:
        return _id_number(v)

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, v: object) -> str:
        return check_name(str(v or ""))

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str) -> str:
        if v and not _PHONE.match(v):
            raise ValueError("must be a mobile number (11 digits, 13-19)")
        return v

    @field_validator("total", mode="before")
    @classmethod
    def _total(cls, v: object) -> Decimal:
        return money(v)

    @model_validator(mode="after")
    def _whole(self) -> DrugOrder:
        seen: dict[str, int] = {}
        for i, item in enumerate(self.items):
            if item.drug_code in seen:
                raise ValueError(f"items.{i}.drug_code: {item.drug_code} repeats line "
                                 f"{seen[item.drug_code]}; one line per drug")
            seen[item.drug_code] = i
        lines = sum((i.amount for i in self.items), Decimal("0.00"))
        if lines != self.total:
            raise ValueError(f"total: {money_text(self.total)} is not the sum of the lines "
                             f"{money_text(lines)}")
        if self.delivery == "ship" and not self.address:
            raise ValueError("address: required when the order is shipped")
        return self


class PaidNotice(BaseModel):
    """The mall tells the hub an order is paid (在线支付 through the 移动支付平台, 3069):
    the split must add up to the order's total, to the fen."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    pay_no: str = Field(pattern=r"^[A-Za-z0-9_-]{4,40}$", description="the payment's number")
    total: Decimal
    fund_pay: Decimal = Field(description="统筹基金支付")
    acct_pay: Decimal = Field(description="个人账户支付")
    self_pay: Decimal = Field(description="个人自付 (cash)")

    @field_validator("total", "fund_pay", "acct_pay", "self_pay", mode="before")
    @classmethod
    def _money(cls, v: object) -> Decimal:
        return money(v)

    @model_validator(mode="after")
    def _adds_up(self) -> PaidNotice:
        parts = self.fund_pay + self.acct_pay + self.self_pay
        if parts != self.total:
            raise ValueError(f"total: {money_text(self.total)} is not fund_pay + acct_pay + "
                             f"self_pay = {money_text(parts)}")
        return self


class ReturnRequest(BaseModel):
    """订单退货 (3089): the whole order back, with why."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    kind: Literal["wrong_order", "not_wanted", "out_of_stock", "other"]
    reason: str = Field(default="", max_length=200)


# ---------------------------------------------------------------- the ERP (ERP -> hub)

class PharmacyEvent(BaseModel):
    """What the pharmacy ERP tells the hub of one order."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    event_id: str = Field(pattern=r"^[A-Za-z0-9_:.-]{4,64}$", description="a repeat is a replay")
    order_no: str = Field(pattern=_ORDER_NO)
    event: Literal["accepted", "shipped", "refunded", "rejected"]
    logistics_company: str = Field(default="", max_length=40)
    logistics_no: str = Field(default="", max_length=40)
    refund_amount: Decimal | None = None
    reason: str = Field(default="", max_length=200)

    @field_validator("refund_amount", mode="before")
    @classmethod
    def _money(cls, v: object) -> Decimal | None:
        return None if v is None else money(v)

    @model_validator(mode="after")
    def _fields(self) -> PharmacyEvent:
        if self.event == "shipped" and self.logistics_no == "" \
                and self.logistics_company != "pickup":
            raise ValueError("logistics_no: required when shipped (or logistics_company "
                             "pickup for 线下提货)")
        if self.event == "refunded" and self.refund_amount is None:
            raise ValueError("refund_amount: required when refunded")
        if self.event == "rejected" and not self.reason:
            raise ValueError("reason: required when the pharmacy refuses an order")
        return self


class StockLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    drug_code: str = Field(pattern=_DRUG_CODE)
    quantity: int = Field(ge=-99_999, le=999_999, description="snapshot: on hand (>= 0); "
                          "delta: the change (may be negative)")


class StockPush(BaseModel):
    """A pharmacy's stock (库存盘点 3140): a snapshot of what is on hand, or deltas."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    push_id: str = Field(pattern=r"^[A-Za-z0-9_:.-]{4,64}$", description="a repeat is a replay")
    pharmacy_code: str = Field(pattern=_PHARMACY)
    mode: Literal["snapshot", "delta"]
    items: list[StockLine] = Field(min_length=1, max_length=5000)

    @model_validator(mode="after")
    def _lines(self) -> StockPush:
        seen: set[str] = set()
        for i, line in enumerate(self.items):
            if line.drug_code in seen:
                raise ValueError(f"items.{i}.drug_code: {line.drug_code} repeats; one line "
                                 "per drug")
            seen.add(line.drug_code)
            if self.mode == "snapshot" and line.quantity < 0:
                raise ValueError(f"items.{i}.quantity: a snapshot's quantity may not be "
                                 "negative")
        return self


class ReconLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    order_no: str = Field(pattern=_ORDER_NO)
    kind: Literal["sale", "refund"]
    amount: Decimal

    @field_validator("amount", mode="before")
    @classmethod
    def _money(cls, v: object) -> Decimal:
        return money(v)


class ReconTotals(BaseModel):
    """One pharmacy's day as its ERP counts it (药店订单对账 3170): totals and the lines
    they are made of; totals that are not the sum of the lines are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pharmacy_code: str = Field(pattern=_PHARMACY)
    day: date
    sales: int = Field(ge=0)
    sales_amount: Decimal
    refunds: int = Field(ge=0)
    refund_amount: Decimal
    lines: list[ReconLine] = Field(default_factory=list, max_length=100_000)

    @field_validator("sales_amount", "refund_amount", mode="before")
    @classmethod
    def _money(cls, v: object) -> Decimal:
        return money(v)

    @model_validator(mode="after")
    def _sums(self) -> ReconTotals:
        for kind, count, amount, name in (("sale", self.sales, self.sales_amount, "sales"),
                                          ("refund", self.refunds, self.refund_amount,
                                           "refund")):
            mine = [ln for ln in self.lines if ln.kind == kind]
            got = sum((ln.amount for ln in mine), Decimal("0.00"))
            if len(mine) != count:
                raise ValueError(f"{'sales' if kind == 'sale' else 'refunds'}: {count} is not "
                                 f"the number of {kind} lines {len(mine)}")
            if got != amount:
                raise ValueError(f"{name}_amount: {money_text(amount)} is not the sum of the "
                                 f"{kind} lines {money_text(got)}")
        return self


@dataclass(frozen=True)
class ReconResult:
    """The hub's count against the ERP's: balanced, or each difference."""

    balanced: bool
    hub: dict[str, Any]
    erp: dict[str, Any]
    differences: list[dict[str, str]] = field(default_factory=list)


def refusals(exc: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    """pydantic's errors as (field, reason): a whole-model check names its field first
    (``total: ...``), so it is split there; a missing field reads ``required``."""
    out = []
    for e in exc.errors():
        msg = str(e["msg"]).removeprefix("Value error, ")
        where = ".".join(str(p) for p in e["loc"])
        if not where and ":" in msg:
            where, msg = (p.strip() for p in msg.split(":", 1))
        out.append((prefix + (where or "body"), "required" if e["type"] == "missing" else msg))
    return out


def _totals(lines: Sequence[ReconLine]) -> dict[str, Any]:
    sales = [ln for ln in lines if ln.kind == "sale"]
    refunds = [ln for ln in lines if ln.kind == "refund"]
    return {"sales": len(sales),
            "sales_amount": money_text(sum((ln.amount for ln in sales), Decimal("0.00"))),
            "refunds": len(refunds),
            "refund_amount": money_text(sum((ln.amount for ln in refunds), Decimal("0.00")))}


def reconcile(hub_lines: Sequence[ReconLine], erp: ReconTotals) -> ReconResult:
    """对账 of one pharmacy's day: totals first, then line by line (only at the hub, only
    at the ERP, amounts that differ)."""
    hub_totals = _totals(hub_lines)
    erp_totals = {"sales": erp.sales, "sales_amount": money_text(erp.sales_amount),
                  "refunds": erp.refunds, "refund_amount": money_text(erp.refund_amount)}
    diffs: list[dict[str, str]] = []
    mine = {(ln.order_no, ln.kind): ln.amount for ln in hub_lines}
    theirs = {(ln.order_no, ln.kind): ln.amount for ln in erp.lines}
    if erp.lines or not hub_lines:
        for key in sorted(mine.keys() | theirs.keys()):
            a, b = mine.get(key), theirs.get(key)
            if a is None:
                diffs.append({"order_no": key[0], "kind": key[1], "issue": "only at the ERP",
                              "erp": money_text(b or Decimal(0))})
            elif b is None:
                diffs.append({"order_no": key[0], "kind": key[1], "issue": "only at the hub",
                              "hub": money_text(a)})
            elif a != b:
                diffs.append({"order_no": key[0], "kind": key[1], "issue": "amounts differ",
                              "hub": money_text(a), "erp": money_text(b)})
    for k in ("sales", "sales_amount", "refunds", "refund_amount"):
        if hub_totals[k] != erp_totals[k] and not diffs:
            diffs.append({"total": k, "issue": "totals differ", "hub": str(hub_totals[k]),
                          "erp": str(erp_totals[k])})
    return ReconResult(balanced=not diffs and hub_totals == erp_totals, hub=hub_totals,
                       erp=erp_totals, differences=diffs)


# ---------------------------------------------------------------- core (3270-3271, 3280)

class CatalogueDrug(BaseModel):
    """One drug of core's catalogue as the hub keeps it: 处方药 or not (3271), in the 医保
    目录 or not, and its 单次购药量 limit (3310) when core sets one."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    drug_code: str = Field(pattern=_DRUG_CODE)
    name: str = Field(min_length=1, max_length=80)
    rx: bool
    insured: bool = True
    max_qty: int | None = Field(default=None, ge=1, le=9999)


@dataclass(frozen=True)
class Eligibility:
    """医保资格 (3281): whether core holds the person insured, in a normal state."""

    insured: bool
    normal: bool
    psn_type: str = ""
    detail: str = ""


def eligibility_refusal(e: Eligibility) -> tuple[str, str] | None:
    if not e.insured:
        return ("id_number", "no 医保资格: the person is not insured at core"
                + (f" ({e.detail})" if e.detail else ""))
    if not e.normal:
        return ("id_number", "no 医保资格: the person's insurance is not in a normal state"
                + (f" ({e.detail})" if e.detail else ""))
    return None


# ---------------------------------------------------------------- the sale gate

def gate_refusals(order: DrugOrder, catalogue: Mapping[str, CatalogueDrug], *,
                  default_limit: int) -> list[tuple[str, str]]:
    """The checks on the order alone and the catalogue: each drug known to the hub (core's
    catalogue), within its 单次购药量 (the drug's ``max_qty``, else ``default_limit``), and a
    prescription named when any line is a 处方药."""
    out: list[tuple[str, str]] = []
    rx_lines = []
    for i, item in enumerate(order.items):
        drug = catalogue.get(item.drug_code)
        if drug is None:
            out.append((f"items.{i}.drug_code", f"{item.drug_code} is not in the catalogue "
                        "synced from core"))
            continue
        limit = drug.max_qty or default_limit
        if item.quantity > limit:
            out.append((f"items.{i}.quantity", f"{item.quantity} is over the 单次购药量 limit "
                        f"{limit} for {drug.name}"))
        if drug.rx:
            rx_lines.append(i)
    if rx_lines and order.prescription is None:
        names = "、".join(order.items[i].name for i in rx_lines)
        out.append(("prescription", f"required: {names} is a 处方药 (sold only on a "
                    "prescription the 电子处方中心 holds)"))
    return out


def prescription_refusals(order: DrugOrder, catalogue: Mapping[str, CatalogueDrug], *,
                          found: bool, valid: bool, reason: str, id_number: str,
                          drugs: Mapping[str, Decimal], expires_at: datetime | None,
                          now: datetime) -> list[tuple[str, str]]:
    """The center's verified answer against the order (3326): the prescription exists, is
    valid (not expired, not revoked...), is this buyer's, and covers each 处方药 line."""
    if not found:
        return [("prescription", "not found at the 电子处方中心")]
    if not valid:
        return [("prescription", f"not valid: {reason or 'the center says so'}")]
    if expires_at is not None and expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=BEIJING)  # the center's times are Beijing's
    if expires_at is not None and expires_at <= now:
        return [("prescription", f"expired at {expires_at.isoformat()}")]
    if id_number.strip().upper() != order.id_number:
        return [("prescription", "for another person: the prescription is not the buyer's")]
    out = []
    for i, item in enumerate(order.items):
        drug = catalogue.get(item.drug_code)
        if drug is None or not drug.rx:
            continue
        prescribed = drugs.get(item.drug_code)
        if prescribed is None:
            out.append((f"items.{i}.drug_code", f"{item.name} is not on the prescription"))
        elif Decimal(item.quantity) > prescribed:
            out.append((f"items.{i}.quantity", f"{item.quantity} is more than the "
                        f"{prescribed} prescribed"))
    return out


def stock_refusals(order: DrugOrder, stock: Mapping[str, int]) -> list[tuple[str, str]]:
    """Lines that would take the pharmacy's stock below zero (refused, nothing held)."""
    out = []
    for i, item in enumerate(order.items):
        have = stock.get(item.drug_code, 0)
        if item.quantity > have:
            out.append((f"items.{i}.quantity", f"stock would go negative: the pharmacy has "
                        f"{have} of {item.name}, the order takes {item.quantity}"))
    return out


# ---------------------------------------------------------------- hub messages of F11

def _message(type_: str, target: str, business: str, payload: dict[str, Any],
             order_no: str) -> HubMessage:
    return HubMessage(type=type_, source="hub", target=target, correlation_id=order_no,
                      idempotency_key=idempotency_key(type_, business, {}),
                      entity_key=entity_key("drug_order", order_no), payload=payload)


def pharmacy_message(type_: str, payload: dict[str, Any]) -> HubMessage:
    """A paid order (``PHARMACY_ORDER``) or a refund request (``PHARMACY_REFUND``) to the
    order's pharmacy; one per order and kind."""
    no = str(payload["order_no"])
    return _message(type_, PHARMACY, f"{no}:{type_}", payload, no)


def supervision_message(type_: str, payload: dict[str, Any]) -> HubMessage:
    """A paid order with its 用药情况 (``SUPERVISION_ORDER``), or its refund, to the
    supervision platform; one per order and kind, whatever else changes."""
    no = str(payload["order_no"])
    return _message(type_, SUPERVISION, f"{no}:{type_}", payload, no)
