"""F1 business rules of the seed, as pure functions of facts the pipeline gathers.

Each takes what it decides on (tax's answer rows, the day, the 集中征缴期) as
arguments, so a test states every input. The readings of the seed behind them:
``contracts/CHANNEL_RULES.md``.

* 出生一件事 (seed 2555): a newborn whose 准新生儿 enrollment (mother's ID + 胎次)
  is paid for this year is enrolled from next year; otherwise from this year
  (``prenewborn_paid``, ``newborn_insure_year``). 本市户籍 only: the contract
  (``BirthNewbornEnroll``) refuses any other 户籍性质, naming the field.
* 新生儿参保登记 (seed 1750-1759, 2490): 参保日期 is the birth date; a 准新生儿 of the
  mother still enrolled at tax is stopped first (``prenewborn_to_convert``).
* 退休一件事 (seed 2544): a person with a normal 职工医保 (险种 310) contribution in
  the current month is enrolled as flexible from next month; otherwise from this
  month (``normal_employee_contribution``, ``retirement_start_month``).
* 城乡居民参保登记 (seed 1781-1782): inside the 集中征缴期 the enrollment is for next
  year, outside it for this year; with a 中途参保标志 (退役军人 and the other three)
  it is for this year from the day of enrollment (``resident_insure_year``).
* 基本医疗保险转出 and 在职转退休: refused while tax shows arrears, with the amount.
* 基本医疗保险转出 (seed 1841, 2526): refused unless the 转入地 holds a normal enrollment
  and no pending 代办 business (``check_transfer_destination``; core answers, H1106).
* The community (基层医保区划) must be one tax knows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from contracts.channels import MIDYEAR_FLAGS, CollectionPeriods
from contracts.errors import BusinessRejected

__all__ = ["ARREARS_CHECKED", "EMPLOYEE_INSUTYPE", "PAID", "ResidentYear", "check_arrears",
           "check_community", "check_transfer_destination", "newborn_insure_year",
           "normal_employee_contribution", "prenewborn_paid", "prenewborn_to_convert",
           "resident_insure_year", "retirement_start_month"]

ARREARS_CHECKED: Final = frozenset({"transfer_out", "retire"})
"""Application types refused while the person has arrears at tax."""

PAID: Final = "1"
"""``status`` of a paid record in tax's answers (QueryPaymentInfo 正常, QueryPreNewbornPayment)."""

EMPLOYEE_INSUTYPE: Final = "310"
"""险种 职工基本医疗保险: the only contribution 退休一件事 counts."""


def _fen(value: object) -> int:
    """An amount of tax's answer in fen; anything unreadable counts as nothing paid."""
    text = str(value or "").strip()
    return int(text) if text.isdigit() else 0


def prenewborn_paid(rows: Iterable[Mapping[str, object]], insure_year: str) -> bool:
    """Whether tax's QueryPreNewbornPayment answer shows this year's fee paid.

    A row counts when it is for ``insure_year`` (when it says), its ``paid_amount``
    is above zero and its ``status`` (when given) is ``1`` paid: a 准新生儿 record that
    exists but is unpaid (amount 0, status 0) does not move the newborn to next year.
    """
    return any(str(r.get("insure_year") or insure_year) == insure_year
               and _fen(r.get("paid_amount")) > 0
               and str(r.get("status") or PAID) == PAID for r in rows)


def prenewborn_to_convert(rows: Iterable[Mapping[str, object]],
                          birth_order: int | None) -> int | None:
    """新生儿参保登记 (seed 1750, 1759): which of the mother's 准新生儿 records, still
    enrolled (``prenewborn_status`` 1) at tax, this newborn converts; None: enroll directly.

    With the 胎次 given, that one (when enrolled). Without it, the mother's only enrolled
    准新生儿; two or more cannot be told apart, so the application is refused naming
    ``payload.birth_order`` rather than stopping the wrong child's record.
    """
    enrolled = sorted({int(str(r.get("birth_order"))) for r in rows
                       if str(r.get("prenewborn_status") or "1") == "1"
                       and str(r.get("birth_order") or "").isdigit()})
    if birth_order is not None:
        return birth_order if birth_order in enrolled else None
    if len(enrolled) > 1:
        raise BusinessRejected(
            "PRENEWBORN_AMBIGUOUS", "payload.birth_order: the mother has 准新生儿 records for "
            f"胎次 {', '.join(map(str, enrolled))}; say which one this newborn is")
    return enrolled[0] if enrolled else None


def newborn_insure_year(prenewborn_paid_this_year: bool, today: date) -> str:
    """出生一件事: the year the newborn's enrollment starts."""
    return str(today.year + 1 if prenewborn_paid_this_year else today.year)


def normal_employee_contribution(rows: Iterable[Mapping[str, object]], month: str) -> bool:
    """Whether tax's QueryPaymentInfo answer holds a normal 职工医保 contribution of ``month``.

    Normal: 险种 ``310`` (职工基本医疗保险; 390 城乡居民, 510 生育... do not count),
    status ``1`` 正常 (not 欠缴 or 作废), an amount above zero, and the month asked
    (when the row names its month).
    """
    return any(str(r.get("insutype") or "") == EMPLOYEE_INSUTYPE
               and str(r.get("status") or "") == PAID
               and _fen(r.get("paid_amount")) > 0
               and str(r.get("period_start") or month) == month for r in rows)


def retirement_start_month(contributed_this_month: bool, today: date) -> str:
    """退休一件事: the month tax gets the flexible enrollment from (yyyyMM)."""
    if not contributed_this_month:
        return f"{today:%Y%m}"
    nxt = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    return f"{nxt:%Y%m}"


@dataclass(frozen=True)
class ResidentYear:
    """The insurance year of a 城乡居民参保登记, and its 中途参保 start when it has one."""

    insure_year: str
    midyear_flag: str | None = None
    insure_start_date: date | None = None

    def overrides(self) -> dict[str, str]:
        """As ``contracts.channels.to_tax_payload`` arguments (JSON-ready)."""
        out = {"insure_year": self.insure_year}
        if self.midyear_flag is not None and self.insure_start_date is not None:
            out |= {"midyear_flag": self.midyear_flag,
                    "insure_start_date": self.insure_start_date.isoformat()}
        return out


def resident_insure_year(today: date, periods: CollectionPeriods,
                         midyear_flag: str | None = None) -> ResidentYear:
    """城乡居民参保登记: for which year, and from which day.

    With a 中途参保标志 (seed 1782: 开始时间为参保当天，结束日期为参保年度12月31日) the
    person joins mid-year: this year, from ``today``, inside the 集中征缴期 too (the
    four cases are people whose coverage must not wait for next year). Otherwise
    (seed 1781): inside the 集中征缴期 the year it collects for (next year with the
    default period), outside it this year.
    """
    if midyear_flag is not None:
        if midyear_flag not in MIDYEAR_FLAGS:
            raise ValueError(f"unknown 中途参保标志 {midyear_flag!r}")
        return ResidentYear(str(today.year), midyear_flag, today)
    year = periods.collecting_for(today)
    return ResidentYear(str(year if year is not None else today.year))


def check_arrears(app_type: str, arrears_fen: int) -> None:
    if app_type in ARREARS_CHECKED and arrears_fen > 0:
        raise BusinessRejected(
            "ARREARS", f"payload.id_number: tax shows arrears of {arrears_fen / 100:.2f} yuan; "
                       "settle them before this application")


def check_transfer_destination(target_division: str, insured: bool,
                               pending_business: bool, detail: str = "") -> None:
    """转出 (seed 1841, 2526): the 转入地 must hold a normal enrollment of the person and
    no pending 代办 business; the refusal names ``payload.target_division``."""
    extra = f" ({detail})" if detail else ""
    if not insured:
        raise BusinessRejected(
            "DESTINATION_NOT_INSURED", f"payload.target_division: the 转入地 {target_division} "
            f"holds no normal enrollment of this person{extra}; enroll there first")
    if pending_business:
        raise BusinessRejected(
            "DESTINATION_PENDING", f"payload.target_division: 代办 business of this person is "
            f"pending at the 转入地 {target_division}{extra}; finish it first")


def check_community(community: str, valid_at_tax: bool) -> None:
    if not valid_at_tax:
        raise BusinessRejected(
            "COMMUNITY_UNKNOWN", f"payload.community: {community} is not a 基层医保区划 tax knows")
