"""F15 大病保险承办机构 (the critical-illness insurer), seed ``004`` lines 25-130: pure parts.

    settlement share (77)   core's one-stop settlement event (H8501) -> the 大病 segment of it
                            (``hifmi_pay``) for the insurer, in step, per person in order; a
                            冲销 (reversal) follows its original (``HubMessage.after``)
    financing (29, 39)      筹资 = paying residents × 110 元; the transfer schedule
                            (``schedule``, ``december_transfer``, ``netting``), Decimal exact
    batches (28, 71, 75)    赔付明细 (quarterly), 分析报告 (yearly), 清算 (yearly), 轧差 (Q1):
                            a header whose totals must equal the sum of its rows
                            (``check_batch``)
    claim limit (111)       from the 结算单 received (the share delivered) to payment: a
                            due date in working days (``due_date``)
    clues (123, 126)        疑点数据 passed to the insurer

Readings and what is not built: ``contracts/SERIOUS_ILLNESS.md``. Only stdlib, pydantic and
other contracts: this is the ground floor.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from contracts.assistance import (
    Settlement,
    fen,
    id_number_text,
    setl_id_text,
    settlement_from_wire,
)
from contracts.envelope import HubMessage, entity_key, idempotency_key
from contracts.ids import validate_id_number

__all__ = [
    "BATCH_KINDS",
    "CLAIM_LIMIT_DAYS",
    "CLUE",
    "FINANCING",
    "INBOUND_KINDS",
    "INFNO_SETTLEMENT",
    "OUTBOUND_KINDS",
    "PARTNER",
    "PER_HEAD",
    "SHARE",
    "Batch",
    "BatchKind",
    "Clue",
    "Reversal",
    "Tranche",
    "batch_id",
    "batch_serial",
    "check_batch",
    "clue_message",
    "december_transfer",
    "due_date",
    "financing_message",
    "financing_total",
    "is_overdue",
    "netting",
    "parse_event",
    "parse_period",
    "person_key",
    "schedule",
    "share_message",
    "share_payload",
]

PARTNER: Final = "insurer"
"""``partners.insurer``: the insurer's endpoint and the secret both sides sign with."""
INFNO_SETTLEMENT: Final = "H8501"
"""Core -> hub: one one-stop settlement (``setl_type`` 1) or its 冲销 (``setl_type`` 2)."""
SHARE: Final = "insurer.share"
"""The insurer's part of a settlement, or its reversal (lane ``insurer.shares``)."""
FINANCING: Final = "insurer.financing"
"""A financing notice: paying residents, 筹资, the year's transfers (lane ``insurer.financing``)."""
CLUE: Final = "insurer.clue"
"""A 疑点数据 clue for the insurer (lane ``insurer.clues``)."""

PER_HEAD: Final = Decimal("110.00")
"""人均筹资 (line 39): 110 元 a paying resident."""
CLAIM_LIMIT_DAYS: Final = 15
"""Working days from the 结算单 received to payment (111 names the limit, not its length; the
hub takes the 15 working days line 29 gives the bureau's own transfers, documented)."""

BatchKind = Literal["claims", "analysis", "clearing", "netting"]
BATCH_KINDS: Final[dict[str, str]] = {
    "claims": "赔付明细 (quarterly, from the insurer)",
    "analysis": "综合医疗分析报告 (yearly, from the insurer)",
    "clearing": "清算 (yearly, to the insurer)",
    "netting": "轧差 (Q1 of the next year, to the insurer)"}
INBOUND_KINDS: Final = ("claims", "analysis")
OUTBOUND_KINDS: Final = ("clearing", "netting")

_CENT: Final = Decimal("0.01")
_QUARTER = re.compile(r"^(20\d\d)Q([1-4])$")
_YEAR = re.compile(r"^(20\d\d)$")


# ---------------------------------------------------------------- settlement shares (77)

def person_key(id_number: str) -> str:
    """The ordering entity of a person's shares (opaque: no ID number in headers)."""
    return entity_key("psn", id_number)


class Reversal(BaseModel):
    """A 冲销 core reports: its own id, the original it reverses, the person, when."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    setl_id: str
    orig_setl_id: str
    id_number: str
    settled_at: str = Field(min_length=10, max_length=19)

    _id = field_validator("setl_id", "orig_setl_id", mode="before")(setl_id_text)
    _id_number = field_validator("id_number", mode="before")(id_number_text)


_REVERSAL_WIRE: Final = {"setl_id": "setl_id", "orig_setl_id": "orig_setl_id",
                         "certno": "id_number", "setl_time": "settled_at"}


def parse_event(data: Mapping[str, Any], where: str = "input.data"
                ) -> Settlement | Reversal | list[tuple[str, str]]:
    """H8501's ``input.data``: ``setl_type`` 1 (a settlement, in core's wire names of
    ``contracts.assistance``) or 2 (a 冲销: ``setl_id``, ``orig_setl_id``, ``certno``,
    ``setl_time``); or every (field, reason)."""
    kind = str(data.get("setl_type") or "")
    rest = {k: v for k, v in data.items() if k != "setl_type"}
    if kind == "1":
        return settlement_from_wire(rest, where)
    if kind != "2":
        return [(f"{where}.setl_type", "must be 1 (结算) or 2 (冲销)")]
    errors = [(f"{where}.{k}", "unknown field") for k in rest if k not in _REVERSAL_WIRE]
    try:
        r = Reversal.model_validate({_REVERSAL_WIRE[k]: v for k, v in rest.items()
                                     if k in _REVERSAL_WIRE})
    except ValidationError as exc:
        back = {v: k for k, v in _REVERSAL_WIRE.items()}
        for e in exc.errors(include_url=False):
            name = str(e["loc"][0]) if e["loc"] else ""
            msg = "required" if e["type"] == "missing" else \
                str(e["msg"]).removeprefix("Value error, ")
            errors.append((f"{where}.{back.get(name, name)}", msg))
        return errors
    if r.setl_id == r.orig_setl_id:
        errors.append((f"{where}.orig_setl_id", "a 冲销 cannot reverse itself"))
    return errors or r


def share_payload(s: Settlement) -> dict[str, Any]:
    """What the insurer gets of a settlement: the person in full (it pays them), the 大病
    segment and the total, fen-exact strings."""
    return {"kind": "settle", "setl_id": s.setl_id, "orig_setl_id": "",
            "id_number": s.id_number, "name": s.name,
            "settled_at": s.settled_at.strftime("%Y-%m-%d %H:%M:%S"),
            "institution_code": s.institution_code, "med_type": s.med_type,
            "medfee_total": f"{s.medfee_total:.2f}",
            "serious_illness_pay": f"{s.serious_illness_pay:.2f}"}


def share_message(payload: dict[str, Any], *, after: str = "") -> HubMessage:
    """One share (``kind`` settle) or its reversal (``kind`` reverse, ``after`` the original's
    idempotency key): one business fact per settlement id, ordered per person."""
    return HubMessage(type=SHARE, source="core", target=PARTNER,
                      correlation_id=str(payload["setl_id"]),
                      idempotency_key=idempotency_key(SHARE, str(payload["setl_id"]), payload),
                      entity_key=person_key(str(payload["id_number"])), payload=payload,
                      after=after)


# ---------------------------------------------------------------- financing (29, 39)

def financing_total(payers: int, per_head: Decimal = PER_HEAD) -> Decimal:
    """实际筹资总额 (39): residents who actually paid × 人均筹资."""
    if payers < 0:
        raise ValueError("payers: not negative")
    return (per_head * payers).quantize(_CENT)


@dataclass(frozen=True)
class Tranche:
    """One transfer of the year: when (the month's end), what (``cap`` of the estimate, or
    the remainder), how much at most."""

    due: date
    kind: Literal["advance", "remainder"]
    share: Decimal
    """The share of the estimated total (0.60, 0.25) for an advance; 0 for the remainder."""
    amount: Decimal
    """An advance: at most ``share`` × estimate (floored to the fen); the remainder: actual
    − advances (``december_transfer``), 0 until the actual is known."""

    def as_dict(self) -> dict[str, str]:
        return {"due": self.due.isoformat(), "kind": self.kind, "share": f"{self.share}",
                "amount": f"{self.amount:.2f}"}


def _month_end(year: int, month: int) -> date:
    nxt = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return nxt - timedelta(days=1)


def _cap(estimated: Decimal, share: Decimal) -> Decimal:
    return (estimated * share).quantize(_CENT, rounding=ROUND_DOWN)


def schedule(year: int, estimated: Decimal, *, first_year: bool,
             actual: Decimal | None = None) -> list[Tranche]:
    """The year's transfers (line 29). The first contract year: end of September at most
    60% of the estimate, end of December the actual total less what was transferred (the
    table's "40%"); a renewed year: end of April, June and September at most 25% each, end
    of December the remainder. 轧差 after the next Q1's clearing is ``netting``."""
    advances = ((9, Decimal("0.60")),) if first_year else \
        ((4, Decimal("0.25")), (6, Decimal("0.25")), (9, Decimal("0.25")))
    out = [Tranche(_month_end(year, m), "advance", s, _cap(estimated, s)) for m, s in advances]
    paid = sum((t.amount for t in out), Decimal("0.00"))
    rest = december_transfer(actual, paid) if actual is not None else Decimal("0.00")
    out.append(Tranche(_month_end(year, 12), "remainder", Decimal("0"), rest))
    return out


def december_transfer(actual: Decimal, transferred: Decimal) -> Decimal:
    """End of December: 实际筹资总额 less what was transferred in the year (never below 0:
    an overpayment is settled by 轧差)."""
    return max(actual - transferred, Decimal("0.00")).quantize(_CENT)


def netting(actual_after_clearing: Decimal, transferred: Decimal) -> Decimal:
    """轧差 (28): the actual total after the next Q1's clearing less everything transferred
    for the year; positive: the bureau pays the insurer, negative: the insurer pays back."""
    return (actual_after_clearing - transferred).quantize(_CENT)


def financing_message(payload: dict[str, Any]) -> HubMessage:
    """A financing notice; the same year and count again is the same fact."""
    key = f"{payload['year']}:{payload['payers']}"
    return HubMessage(type=FINANCING, source="hub", target=PARTNER,
                      correlation_id=f"financing-{payload['year']}",
                      idempotency_key=idempotency_key(FINANCING, key, payload),
                      payload=payload)


# ---------------------------------------------------------------- batches (28, 71, 75)

def parse_period(kind: str, period: str) -> str:
    """``claims``: ``yyyyQn``; the others a year ``yyyy``; ``ValueError`` otherwise."""
    if kind not in BATCH_KINDS:
        raise ValueError(f"kind: one of {', '.join(BATCH_KINDS)}")
    p = period.strip().upper()
    if kind == "claims":
        if not _QUARTER.match(p):
            raise ValueError("period: a quarter, yyyyQn (2026Q1)")
    elif not _YEAR.match(p):
        raise ValueError("period: a year, yyyy")
    return p


def batch_id(kind: str, period: str) -> str:
    return f"{kind}:{period}"


_ROW_AMOUNT: Final[dict[str, str]] = {"claims": "paid", "analysis": "amount",
                                      "clearing": "serious_illness_pay", "netting": "amount"}
"""The amount every row of a kind carries, summed into the header's ``total``."""


@dataclass(frozen=True)
class Batch:
    """A batch whose header adds up: ``count`` rows, ``total`` their amounts (Decimal)."""

    kind: str
    period: str
    count: int
    total: Decimal
    rows: tuple[dict[str, Any], ...]

    def header(self) -> dict[str, Any]:
        return {"kind": self.kind, "period": self.period, "count": self.count,
                "total": f"{self.total:.2f}"}

    def as_wire(self) -> dict[str, Any]:
        return {"header": self.header(), "rows": list(self.rows)}


def check_batch(kind: str, period: str, header: Mapping[str, Any],
                rows: Sequence[Mapping[str, Any]]) -> Batch | list[tuple[str, str]]:
    """The batch when its header's ``count`` and ``total`` equal its rows' (to the fen),
    each row's amount fen-exact; else every (field, reason): nothing of it is kept."""
    errors: list[tuple[str, str]] = []
    amount = _ROW_AMOUNT[kind]
    total = Decimal("0.00")
    kept: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        try:
            total += _signed(row.get(amount)) if amount == "amount" \
                else fen(row.get(amount), amount)
        except ValueError as exc:
            errors.append((f"rows[{i}].{amount}", str(exc).split(": ", 1)[-1]))
            continue
        kept.append(dict(row))
    count = header.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        errors.append(("header.count", "must be a whole number"))
    elif count != len(rows):
        errors.append(("header.count", f"{count} is not the number of rows ({len(rows)})"))
    try:
        want = _signed(header.get("total"))
    except ValueError as exc:
        errors.append(("header.total", str(exc).split(": ", 1)[-1]))
    else:
        if not errors and want != total:
            errors.append(("header.total", f"{want:.2f} is not the sum of the rows "
                                           f"({total:.2f})"))
    if str(header.get("period", period)) != period:
        errors.append(("header.period", f"{header.get('period')!r} is not {period}"))
    return errors or Batch(kind, period, len(kept), total.quantize(_CENT), tuple(kept))


def _signed(value: object) -> Decimal:
    """An amount that may be negative (a 轧差 the insurer pays back), fen-exact, not float."""
    if isinstance(value, str) and value.strip().startswith("-"):
        return -fen(value.strip()[1:], "amount")
    return fen(value, "amount")


def batch_serial(kind: str, period: str, rows: Iterable[Mapping[str, Any]]) -> str:
    """The serial of an outbound batch: derived from what it carries (the same batch again
    is a replay at the insurer)."""
    h = hashlib.sha256(f"{kind}:{period}:".encode())
    for r in rows:
        h.update(repr(sorted(r.items())).encode())
    return h.hexdigest()[:32]


# ---------------------------------------------------------------- claim time limit (111)

def due_date(received: date, days: int = CLAIM_LIMIT_DAYS) -> date:
    """The last day to pay a claim whose 结算单 arrived on ``received``: ``days`` working days
    later (Saturdays and Sundays skipped; public holidays are not modelled: 节假日顺延 is the
    caseworker's call)."""
    d, left = received, days
    while left > 0:
        d += timedelta(days=1)
        if d.weekday() < 5:
            left -= 1
    return d


def is_overdue(due: date, paid_on: date | None, today: date) -> bool:
    """Paid after its due day, or unpaid past it."""
    return (paid_on or today) > due


# ---------------------------------------------------------------- clues (123, 126)

class Clue(BaseModel):
    """A 疑点数据 clue: what looks wrong, where, about whom, how much is in question."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    clue_id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$", description="the bureau's id")
    institution_code: str = Field(min_length=1, max_length=30, description="定点医疗机构")
    id_number: str = Field(default="", description="the person, if one is concerned")
    setl_ids: tuple[str, ...] = Field(default=(), max_length=200)
    category: str = Field(min_length=1, max_length=40, description="e.g. 分解住院, 过度诊疗")
    summary: str = Field(min_length=1, max_length=500)
    amount: Decimal = Field(description="the amount in question, yuan, fen-exact")

    @field_validator("id_number")
    @classmethod
    def _id(cls, v: str) -> str:
        v = v.upper()
        if v and (reason := validate_id_number(v)):
            raise ValueError(f"not a valid ID number: {reason}")
        return v

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, v: object) -> Decimal:
        return fen(v, "amount")


def clue_message(clue: Clue) -> HubMessage:
    payload = clue.model_dump(mode="json") | {"amount": f"{clue.amount:.2f}"}
    return HubMessage(type=CLUE, source="hub", target=PARTNER, correlation_id=clue.clue_id,
                      idempotency_key=idempotency_key(CLUE, clue.clue_id, payload),
                      payload=payload)
