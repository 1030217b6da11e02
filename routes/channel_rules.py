"""F1 business rules of the seed, as pure functions of facts the pipeline gathers.

* 出生一件事: a newborn whose 准新生儿 enrollment was paid this year is enrolled from
  next year; otherwise from this year.
* 退休一件事: a person with a normal employee contribution in the current month is
  enrolled as flexible from next month; otherwise from this month.
* 基本医疗保险转出 and 在职转退休: refused while tax shows arrears, with the amount.
* The community (基层医保区划) must be one tax knows.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Final

from contracts.errors import BusinessRejected

__all__ = ["ARREARS_CHECKED", "check_arrears", "check_community", "newborn_insure_year",
           "retirement_start_month"]

ARREARS_CHECKED: Final = frozenset({"transfer_out", "retire"})
"""Application types refused while the person has arrears at tax."""


def newborn_insure_year(prenewborn_paid_this_year: bool, today: date) -> str:
    """出生一件事: the year the newborn's enrollment starts."""
    return str(today.year + 1 if prenewborn_paid_this_year else today.year)


def retirement_start_month(contributed_this_month: bool, today: date) -> str:
    """退休一件事: the month tax gets the flexible enrollment from (yyyyMM)."""
    if not contributed_this_month:
        return f"{today:%Y%m}"
    nxt = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    return f"{nxt:%Y%m}"


def check_arrears(app_type: str, arrears_fen: int) -> None:
    if app_type in ARREARS_CHECKED and arrears_fen > 0:
        raise BusinessRejected(
            "ARREARS", f"payload.id_number: tax shows arrears of {arrears_fen / 100:.2f} yuan; "
                       "settle them before this application")


def check_community(community: str, valid_at_tax: bool) -> None:
    if not valid_at_tax:
        raise BusinessRejected(
            "COMMUNITY_UNKNOWN", f"payload.community: {community} is not a 基层医保区划 tax knows")
