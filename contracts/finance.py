"""F10 退费 through 用友 finance: refund orders, their states, 销号 batches, the import file.

Seed ``003`` lines 1916-1923, 2244-2265, 2576, 2596 (readings in ``contracts/FINANCE.md``).
Core approves a refund (退费审核, H7001), may withdraw it (退费回退, H7002) or correct its
bank account (退费账户更正, H7003); the hub asks tax whether the money arrived (到账),
sends the order to 用友 (REST, signed JSON) and tells core what finance says (H7101).
Only finance's 已退费 flag makes an order refunded. 销号: finance gets the refunds paid in
each 旬 (ten days), tax those of each month (``RefundWriteOff``).

Money is ``Decimal`` yuan with at most two decimals, carried as a JSON **string**
(``"123.45"``), never a float; tax's fields are integer fen (``to_fen``). Every batch
carries its count and total, checked by whoever reads it (``check_total``).

Only stdlib, pydantic and other contracts: this is the ground floor.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from contracts.clock import BEIJING
from contracts.employee import check_name
from contracts.envelope import HubMessage, entity_key, idempotency_key
from contracts.errors import ValidationFailed, field_errors
from contracts.ids import is_valid_credit_code, validate_id_number
from contracts.student_batch import cell_text

__all__ = [
    "ARRIVAL", "CLOSURE", "CORE_STATUS", "FINAL_STATUSES", "IMPORT_COLUMNS", "INFNO_APPROVED",
    "INFNO_CORRECTED", "INFNO_STATUS", "INFNO_WITHDRAW", "MAX_IMPORT_ROWS", "MAX_ITEMS", "ORDER",
    "PAGE_SIZE", "PARTNER", "STATUSES", "TARGETS", "WITHDRAW", "AccountCorrection", "ClosureItem",
    "ClosurePage", "FinanceCallback", "ImportRow", "Money", "OrderAnswer", "Payee",
    "PaymentQuery", "PaymentRecord", "PaymentsAnswer", "Period", "RefundItem", "RefundOrder",
    "WithdrawAnswer", "Withdrawal", "arrival_message", "batch_serial", "check_import_row",
    "check_total", "closure_id", "closure_message", "core_status_message", "fen_to_yuan",
    "import_aliases", "order_message", "order_payload", "parse_event", "parse_money",
    "parse_period", "period_of", "previous_period", "sum_money", "to_fen", "withdraw_message"
]

PARTNER: Final = "erp_finance"
"""用友 finance's partner name (``partners.erp_finance``: endpoint, secret, timeout)."""

INFNO_APPROVED: Final = "H7001"
"""core -> hub: 退费审核 passed (医疗保险费退收 1917, or a 税务退费申请 1923)."""
INFNO_WITHDRAW: Final = "H7002"
"""core -> hub: 退费回退 (1917)."""
INFNO_CORRECTED: Final = "H7003"
"""core -> hub: 退费账户更正 (2265): a failed order's new bank account."""
INFNO_STATUS: Final = "H7101"
"""hub -> core: where an order stands (refunded, failed, withdrawn, refused)."""

ARRIVAL: Final = "refund.arrival"
"""Ask tax whether the money of an approved order arrived (1916, 2260)."""
ORDER: Final = "refund.order"
"""An order (a version of it) to finance."""
WITHDRAW: Final = "refund.withdraw"
"""退费回退 at finance: on the same lane as ``ORDER``, ordered per order."""
CLOSURE: Final = "refund.closure"
"""A page of a 旬 销号 batch to finance."""
CORE_STATUS: Final = "refund.core_status"
"""H7101 to core."""

STATUSES: Final = ("received", "queued", "sent", "failed", "refunded", "withdrawing",
                   "withdrawn", "refused")
"""An order's states (``storage.refunds``): received (approved, 到账 being checked) ->
queued (to finance) -> sent (finance took it) -> refunded (已退费); failed (finance said
failure; 账户更正 queues a new version); withdrawing -> withdrawn (退费回退); refused
(no 到账, or 复核核验 不通过)."""
FINAL_STATUSES: Final = frozenset({"refunded", "withdrawn", "refused"})

TARGETS: Final = ("finance", "tax")
"""销号 targets: finance every 旬, tax every month (2249)."""
PAGE_SIZE: Final = 200
"""Orders per page of a 销号 batch to finance."""
MAX_ITEMS: Final = 120
"""Detail lines of one order (ten years of months)."""
MAX_IMPORT_ROWS: Final = 2000

_MONEY = re.compile(r"^(0|[1-9]\d{0,11})(\.\d{1,2})?$")
_MONTH = re.compile(r"^(\d{4})(0[1-9]|1[0-2])$")
_ORDER_NO = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_ACCOUNT = re.compile(r"^\d{8,32}$")


# ------------------------------------------------------------------ money

def parse_money(value: object) -> Decimal:
    """Yuan as text with at most two decimals (``"12.30"``); a JSON number (float or int),
    a third decimal, a sign or an exponent is refused: amounts travel as strings."""
    if isinstance(value, Decimal):
        text = format(value, "f")
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise ValueError("must be a string of yuan with at most 2 decimals (e.g. \"12.30\"), "
                         f"not a JSON {type(value).__name__}")
    if text.startswith("-"):
        raise ValueError(f"{text} is negative")
    if not _MONEY.match(text):
        if re.match(r"^\d+\.\d{3,}$", text):
            raise ValueError(f"{text} has more than 2 decimal places (fen is the smallest unit)")
        raise ValueError(f"{text!r} is not an amount of yuan (digits, at most 2 decimals)")
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise ValueError(f"{text!r} is not a decimal") from None


def _money_text(value: Decimal) -> str:
    return f"{value:.2f}"


Money = Annotated[Decimal, BeforeValidator(parse_money), PlainSerializer(_money_text,
                                                                         return_type=str)]
"""Yuan, fen-exact: parsed from text, serialised as text with two decimals."""


def to_fen(amount: Decimal) -> int:
    """Yuan -> integer fen, exact (a third decimal is a ValueError, never rounded)."""
    fen = amount * 100
    if fen != fen.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of fen")
    return int(fen)


def fen_to_yuan(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(Decimal("0.01"))


def check_total(amounts: Iterable[Decimal], total: Decimal, count: int | None = None,
                *, field: str = "total") -> None:
    """A batch's declared ``total`` (and ``count``) against its lines; ``ValidationFailed``
    naming ``field`` (``count``) when they do not add up."""
    values = list(amounts)
    errors: list[tuple[str, str]] = []
    if count is not None and count != len(values):
        errors.append(("count", f"{count} declared, {len(values)} lines"))
    s = sum(values, Decimal("0"))
    if s != total:
        errors.append((field, f"{_money_text(total)} declared, the lines add up to "
                              f"{_money_text(s)}"))
    if errors:
        raise ValidationFailed(errors)


# ------------------------------------------------------------------ periods

def _month_ok(v: str) -> str:
    if not _MONTH.match(v):
        raise ValueError(f"{v!r} is not a month yyyyMM")
    return v


@dataclass(frozen=True)
class Period:
    """A 销号 period: a 旬 for finance (``2026-11-1`` = 1-10, ``-2`` = 11-20, ``-3`` = 21 to
    the month's end), a month for tax (``2026-11``)."""

    target: str
    name: str
    start: date
    end: date

    @property
    def month(self) -> str:
        return f"{self.start:%Y%m}"


def parse_period(target: str, name: str) -> Period:
    """``ValidationFailed`` naming ``target`` or ``period`` when they are not one."""
    if target not in TARGETS:
        raise ValidationFailed([("target", f"{target!r} is not one of {', '.join(TARGETS)}")])
    m = re.fullmatch(r"(\d{4})-(0[1-9]|1[0-2])(?:-([123]))?", name.strip())
    if m is None or (target == "finance") != (m.group(3) is not None):
        shape = "yyyy-MM-D (D = 1, 2 or 3: the 旬)" if target == "finance" else "yyyy-MM"
        raise ValidationFailed([("period", f"{name!r}: a {target} period is {shape}")])
    year, month = int(m.group(1)), int(m.group(2))
    last = calendar.monthrange(year, month)[1]
    if target == "tax":
        return Period(target, name, date(year, month, 1), date(year, month, last))
    dekad = int(m.group(3))
    start = date(year, month, 1 + 10 * (dekad - 1))
    end = date(year, month, last) if dekad == 3 else start + timedelta(days=9)
    return Period(target, name, start, end)


def period_of(target: str, day: date) -> Period:
    """The period of ``target`` that holds ``day``."""
    if target == "tax":
        return parse_period(target, f"{day:%Y-%m}")
    return parse_period(target, f"{day:%Y-%m}-{min(3, (day.day - 1) // 10 + 1)}")


def previous_period(target: str, today: date) -> Period:
    """The last period of ``target`` that ended before ``today`` (what the ticker closes)."""
    return period_of(target, period_of(target, today).start - timedelta(days=1))


def closure_id(target: str, period: str) -> str:
    return f"{target}:{period}"


# ------------------------------------------------------------------ orders

def _id_number(v: str) -> str:
    v = v.strip().upper()
    if reason := validate_id_number(v):
        raise ValueError(reason)
    return v


def _credit_code(v: str) -> str:
    v = v.strip().upper()
    if reason := is_valid_credit_code(v):
        raise ValueError(reason)
    return v


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class RefundItem(_Strict):
    """One detail line: a month and 险种 of the refund (职工, 大额, 生育: 1917)."""

    period: str = Field(description="费款所属期 yyyyMM")
    insutype: Literal["310", "320", "330", "390", "510"]
    amount: Money

    @field_validator("period", mode="before")
    @classmethod
    def _period(cls, v: object) -> str:
        return _month_ok(str(v).strip().replace("-", ""))

    @field_validator("amount")
    @classmethod
    def _positive(cls, v: Decimal) -> Decimal:
        if v <= 0:
            raise ValueError("must be more than 0")
        return v


class Payee(_Strict):
    """The bank account finance pays into (退费账户; corrected by 退费账户更正, 2265)."""

    account_name: str = Field(min_length=2, max_length=100)
    account_no: str
    bank_name: str = Field(min_length=2, max_length=100)

    @field_validator("account_no")
    @classmethod
    def _account(cls, v: str) -> str:
        v = v.replace(" ", "")
        if not _ACCOUNT.match(v):
            raise ValueError("must be 8-32 digits")
        return v


class RefundOrder(_Strict):
    """An approved refund (H7001 ``input.data``): who paid, for which months, how much, into
    which account. ``source`` 1 医疗保险费退收 (the bureau's own, 1917), 2 税务退费申请 (a
    payer's application at tax, 1923: ``refund_no`` is tax's 退费编号, and the 复核核验
    result and time go back to tax, 2244)."""

    order_no: str
    source: Literal["1", "2"] = "1"
    refund_no: str | None = Field(default=None, max_length=40)
    payer_kind: Literal["person", "unit"]
    id_number: str | None = None
    unit_credit_code: str | None = None
    name: str = Field(min_length=2, max_length=100)
    period_start: str
    period_end: str
    items: list[RefundItem] = Field(min_length=1, max_length=MAX_ITEMS)
    amount: Money
    payee: Payee
    review_result: Literal["1", "2"] = "1"
    reviewed_at: datetime

    @field_validator("period_start", "period_end", mode="before")
    @classmethod
    def _months(cls, v: object) -> str:
        return _month_ok(str(v).strip().replace("-", ""))

    @field_validator("order_no")
    @classmethod
    def _order_no(cls, v: str) -> str:
        if not _ORDER_NO.match(v):
            raise ValueError("must be 1-40 of A-Z a-z 0-9 _ -")
        return v

    @field_validator("id_number")
    @classmethod
    def _id(cls, v: str | None) -> str | None:
        return None if v is None else _id_number(v)

    @field_validator("unit_credit_code")
    @classmethod
    def _uscc(cls, v: str | None) -> str | None:
        return None if v is None else _credit_code(v)

    @field_validator("reviewed_at")
    @classmethod
    def _beijing(cls, v: datetime) -> datetime:
        return (v.replace(tzinfo=BEIJING) if v.tzinfo is None else v).astimezone(BEIJING)

    @field_validator("amount")
    @classmethod
    def _positive(cls, v: Decimal) -> Decimal:
        if v <= 0:
            raise ValueError("must be more than 0")
        return v

    @property
    def payer(self) -> str:
        return str(self.id_number or self.unit_credit_code or "")


def _cross(order: RefundOrder, prefix: str) -> list[tuple[str, str]]:
    """The rules no single field shows (each error names its field)."""
    errors: list[tuple[str, str]] = []
    if order.payer_kind == "person" and not order.id_number:
        errors.append((f"{prefix}id_number", "is required for a person's refund"))
    if order.payer_kind == "unit" and not order.unit_credit_code:
        errors.append((f"{prefix}unit_credit_code", "is required for a unit's refund"))
    if order.payer_kind == "person" and order.id_number and order.name:
        try:
            check_name(order.name)
        except ValueError as exc:
            errors.append((f"{prefix}name", str(exc)))
    if order.source == "2" and not order.refund_no:
        errors.append((f"{prefix}refund_no", "is required for a 税务退费申请 (source 2)"))
    if order.period_start > order.period_end:
        errors.append((f"{prefix}period_end",
                       f"{order.period_end} is before period_start {order.period_start}"))
    for i, item in enumerate(order.items):
        if not order.period_start <= item.period <= order.period_end:
            errors.append((f"{prefix}items.{i}.period", f"{item.period} is outside "
                           f"{order.period_start}-{order.period_end}"))
    seen: set[tuple[str, str]] = set()
    for i, item in enumerate(order.items):
        if (item.period, item.insutype) in seen:
            errors.append((f"{prefix}items.{i}", f"{item.period} {item.insutype} twice"))
        seen.add((item.period, item.insutype))
    total = sum((i.amount for i in order.items), Decimal("0"))
    if total != order.amount:
        errors.append((f"{prefix}amount", f"{order.amount:.2f} is not the sum of the items "
                                          f"({total:.2f}): amounts do not add up"))
    return errors


class Withdrawal(_Strict):
    """H7002 ``input.data``: 退费回退 of an order before finance pays it."""

    order_no: str = Field(pattern=_ORDER_NO.pattern)
    reason: str = Field(default="退费回退", max_length=200)


class AccountCorrection(_Strict):
    """H7003 ``input.data``: a failed order's corrected account; the order is sent again
    as a new version under the same order number (2265)."""

    order_no: str = Field(pattern=_ORDER_NO.pattern)
    payee: Payee


def parse_event(infno: str, raw: object) -> RefundOrder | Withdrawal | AccountCorrection:
    """Core's ``input`` of H7001-H7003 -> its contract; ``ValidationFailed`` naming
    ``data.<field>`` (every error, cross-field rules included)."""
    data = raw.get("data") if isinstance(raw, Mapping) else None
    if not isinstance(data, Mapping):
        raise ValidationFailed([("data", "input.data must be an object")])
    models: dict[str, type[RefundOrder] | type[Withdrawal] | type[AccountCorrection]] = {
        INFNO_APPROVED: RefundOrder, INFNO_WITHDRAW: Withdrawal,
        INFNO_CORRECTED: AccountCorrection}
    try:
        out = models[infno].model_validate(dict(data))
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc, prefix="data.")) from None
    if isinstance(out, RefundOrder) and (errors := _cross(out, "data.")):
        raise ValidationFailed(errors)
    return out


# ------------------------------------------------------------------ finance's REST answers

class OrderAnswer(_Strict):
    """Finance's answer to an order: success (taken, to be paid) or failure (per order,
    2265), with its own number."""

    order_no: str
    version: int = Field(ge=1)
    result: Literal["success", "failure"]
    reason: str = ""
    finance_no: str = ""


class WithdrawAnswer(_Strict):
    """Finance's answer to a 回退: withdrawn (it will never pay the order, whatever version
    arrives later), or paid (too late: it paid before the withdrawal)."""

    order_no: str
    result: Literal["withdrawn", "paid"]
    paid_at: datetime | None = None
    finance_no: str = ""


class FinanceCallback(_Strict):
    """Finance calls the hub (``POST /partners/erp_finance/callback``): an order's 已退费
    flag, or its failure (a bank refusing the account)."""

    order_no: str = Field(pattern=_ORDER_NO.pattern)
    version: int = Field(ge=1)
    status: Literal["refunded", "failed"]
    refunded: Literal["0", "1"] = Field(description="已退费标志: 1 when status is refunded")
    amount: Money
    finance_no: str = Field(default="", max_length=64)
    paid_at: datetime | None = None
    reason: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _flag(self) -> FinanceCallback:
        if (self.status == "refunded") != (self.refunded == "1"):
            raise ValueError("refunded (已退费标志) must be 1 exactly when status is refunded")
        if self.status == "refunded" and self.paid_at is None:
            raise ValueError("paid_at is required with the 已退费 flag")
        return self


class ClosureItem(_Strict):
    order_no: str
    version: int = Field(ge=1)
    amount: Money
    refunded_on: str = Field(description="the day the hub recorded the 已退费 flag")


class ClosurePage(_Strict):
    """One page of a 旬 销号 batch to finance; the page's and the batch's totals are both
    declared and checked (``check_total``)."""

    batch_id: str
    period: str
    start_date: str
    end_date: str
    page: int = Field(ge=1)
    pages: int = Field(ge=1)
    batch_count: int = Field(ge=0)
    batch_total: Money
    count: int = Field(ge=0)
    total: Money
    items: list[ClosureItem] = Field(max_length=PAGE_SIZE)

    @model_validator(mode="after")
    def _adds_up(self) -> ClosurePage:
        try:
            check_total((i.amount for i in self.items), self.total, self.count)
        except ValidationFailed as exc:
            raise ValueError(exc.reason) from None
        return self


class PaymentQuery(_Strict):
    """网办大厅's question (2576, 2596): what finance paid to a unit's account in a span."""

    unit_credit_code: str
    start_date: date
    end_date: date

    @field_validator("unit_credit_code")
    @classmethod
    def _uscc(cls, v: str) -> str:
        return _credit_code(v)

    @model_validator(mode="after")
    def _span(self) -> PaymentQuery:
        if self.start_date > self.end_date:
            raise ValueError("start_date is after end_date")
        if (self.end_date - self.start_date).days > 366:
            raise ValueError("the span is longer than a year")
        return self


class PaymentRecord(_Strict):
    order_no: str
    finance_no: str
    account_name: str
    account_no: str
    bank_name: str
    amount: Money
    paid_at: datetime


class PaymentsAnswer(_Strict):
    records: list[PaymentRecord]
    count: int = Field(ge=0)
    total: Money


# ------------------------------------------------------------------ the import file

IMPORT_COLUMNS: Final[dict[str, str]] = {
    "序号": "seq", "姓名": "name", "身份证": "id_number", "退费起始时间": "period_start",
    "退费终止时间": "period_end",
}
"""The template of 1918, in its order; every column is required."""
_IMPORT_ALIASES: Final = {"身份证号": "身份证", "身份证号码": "身份证"}
_WHEN = re.compile(r"^(\d{4})[-/.年]?(\d{1,2})(?:[-/.月]?(\d{1,2})日?)?月?$")


def _period_cell(value: object) -> str:
    text = cell_text(value)
    m = _WHEN.match(text)
    if m is None or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(f"{text!r} is not a month (yyyyMM, yyyy-MM) or a date")
    return f"{m.group(1)}{int(m.group(2)):02d}"


class ImportRow(_Strict):
    """One row of a refund import (序号, 姓名, 身份证, 退费起始时间, 退费终止时间): the
    periods are 期号 yyyyMM (a date is read as its month)."""

    seq: int = Field(ge=1)
    name: str
    id_number: str
    period_start: str
    period_end: str


def check_import_row(cells: Mapping[str, object]) -> ImportRow:
    """A row by field -> ``ImportRow``; ``ValidationFailed`` naming the Chinese column."""
    column = {f: c for c, f in IMPORT_COLUMNS.items()}
    errors: list[tuple[str, str]] = []
    values: dict[str, Any] = {}
    for f, c in column.items():
        raw = cells.get(f)
        text = cell_text(raw)
        if not text:
            errors.append((c, "必填"))
            continue
        try:
            if f == "seq":
                if not text.isdigit() or int(text) < 1:
                    raise ValueError(f"{text!r} is not a positive whole number")
                values[f] = int(text)
            elif f == "name":
                values[f] = check_name(text)
            elif f == "id_number":
                values[f] = _id_number(text)
            else:
                values[f] = _period_cell(raw)
        except ValueError as exc:
            errors.append((c, str(exc)))
    if not errors and values["period_start"] > values["period_end"]:
        errors.append(("退费终止时间", f"{values['period_end']} is before 退费起始时间 "
                                        f"{values['period_start']}"))
    if errors:
        raise ValidationFailed(errors)
    return ImportRow(**values)


def import_aliases() -> dict[str, str]:
    return dict(_IMPORT_ALIASES)


# ------------------------------------------------------------------ messages

def _message(type_: str, key: str, payload: dict[str, Any], *, target: str,
             correlation_id: str, salt: str = "") -> HubMessage:
    return HubMessage(type=type_, source="hub", target=target, correlation_id=correlation_id,
                      idempotency_key=idempotency_key(type_, key, payload, salt),
                      entity_key=entity_key("refund", str(payload.get("order_no") or key)),
                      payload=payload)


def order_payload(order: RefundOrder, version: int) -> dict[str, Any]:
    """What finance gets of a version of an order (amounts as text)."""
    return {"order_no": order.order_no, "version": version,
            **order.model_dump(mode="json", exclude={"order_no"})}


def arrival_message(order: RefundOrder, correlation_id: str) -> HubMessage:
    return _message(ARRIVAL, order.order_no, order_payload(order, 1), target="tax",
                    correlation_id=correlation_id)


def order_message(order: RefundOrder, version: int, correlation_id: str) -> HubMessage:
    """Version ``version`` of an order to finance; a new version (账户更正) is a new fact."""
    return _message(ORDER, f"{order.order_no}:{version}", order_payload(order, version),
                    target=PARTNER, correlation_id=correlation_id)


def withdraw_message(order_no: str, version: int, reason: str,
                     correlation_id: str) -> HubMessage:
    return _message(WITHDRAW, order_no, {"order_no": order_no, "version": version,
                                         "reason": reason},
                    target=PARTNER, correlation_id=correlation_id)


def core_status_message(order_no: str, version: int, status: str, *, reason_field: str = "",
                        reason: str = "", amount: str = "", finance_no: str = "",
                        at: str = "", correlation_id: str = "") -> HubMessage:
    """H7101: one per order, version and status (a repeat is the same fact)."""
    payload = {"order_no": order_no, "version": version, "status": status,
               "reason_field": reason_field, "reason": reason[:500], "amount": amount,
               "finance_no": finance_no, "at": at}
    return HubMessage(type=CORE_STATUS, source="hub", target="core",
                      correlation_id=correlation_id or order_no,
                      idempotency_key=idempotency_key(CORE_STATUS,
                                                      f"{order_no}:{version}:{status}", {}),
                      entity_key=entity_key("refund", order_no), payload=payload)


def closure_message(page: ClosurePage) -> HubMessage:
    payload = page.model_dump(mode="json")
    key = f"{page.batch_id}:{page.page}"
    return HubMessage(type=CLOSURE, source="hub", target=PARTNER, correlation_id=page.batch_id,
                      idempotency_key=idempotency_key(CLOSURE, key, {}),
                      entity_key=entity_key("refund-closure", page.batch_id), payload=payload)


def batch_serial(batch_id: str, page: int) -> str:
    """The serial finance deduplicates a 销号 page on."""
    return "XH" + hashlib.sha256(f"{batch_id}:{page}".encode()).hexdigest()[:30].upper()


def sum_money(values: Sequence[Decimal]) -> Decimal:
    return sum(values, Decimal("0"))
