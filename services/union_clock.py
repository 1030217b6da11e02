"""The working-day clock of F12 union cases (seed ``000_*.txt`` lines 67-75).

Working days follow the Chinese public-holiday calendar as published by the State
Council each year, holidays and 调休 working weekends alike: ``chinese_calendar``
(a maintained package that ships each year's notice). For a year it does not know yet,
Monday to Friday count, and a warning says so once per year.

Deadlines, in Beijing dates (the day a timer starts does not count; the deadline is
the end of the n-th working day after it):

    acceptance  2 working days after the union received the complete materials (67)
    closure     3 working days after acceptance (69), not counting the days the case
                waited for the applicant unit (70) or was under investigation / 面核 (73)
    archive     5 working days after the union's 终审结案 (75)

A pause (``Pause``) covers the dates from its start up to, not including, the date it
ended; a pause still open stops the clock (no deadline until it ends). Urgent cases
come first, then the earliest deadline (71): ``work_order``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

import chinese_calendar

__all__ = ["ACCEPT_DAYS", "ARCHIVE_DAYS", "CLOSE_DAYS", "Pause", "add_working_days", "close_due",
           "due_status", "excluded_days", "is_working_day", "work_order"]

log = logging.getLogger("hub.union.clock")

ACCEPT_DAYS: Final = 2
CLOSE_DAYS: Final = 3
ARCHIVE_DAYS: Final = 5
_warned: set[int] = set()


def is_working_day(d: date) -> bool:
    """A working day of the Chinese calendar (调休 Saturdays included, holidays not)."""
    try:
        return bool(chinese_calendar.is_workday(d))
    except NotImplementedError:
        if d.year not in _warned:
            _warned.add(d.year)
            log.warning("no public-holiday calendar for %d yet (upgrade chinese-calendar): "
                        "counting Monday to Friday", d.year)
        return d.weekday() < 5


@dataclass(frozen=True)
class Pause:
    """The clock stopped: ``kind`` applicant (申请单位原因) or investigation (调查/面核)."""

    kind: str
    start: date
    end: date | None = None


def excluded_days(pauses: Iterable[Pause]) -> set[date]:
    """The dates closed pauses take out of the clock."""
    out: set[date] = set()
    for p in pauses:
        if p.end is None:
            continue
        d = p.start
        while d < p.end:
            out.add(d)
            d += timedelta(days=1)
    return out


def add_working_days(start: date, n: int, excluded: set[date] | None = None) -> date:
    """The n-th working day after ``start`` that is not in ``excluded``."""
    d, left, skip = start, n, excluded or set()
    while left > 0:
        d += timedelta(days=1)
        if is_working_day(d) and d not in skip:
            left -= 1
    return d


def close_due(accepted_on: date, pauses: Sequence[Pause]) -> date | None:
    """The closure deadline; None while a pause is open (the clock is stopped)."""
    if any(p.end is None for p in pauses):
        return None
    return add_working_days(accepted_on, CLOSE_DAYS, excluded_days(pauses))


def due_status(due: date | None, done: bool, today: date, *, soon_days: int = 1) -> str:
    """``met`` (done), ``stopped`` (no deadline), ``overdue`` (today is past it), ``soon``
    (due within ``soon_days`` working days) or ``running``."""
    if done:
        return "met"
    if due is None:
        return "stopped"
    if today > due:
        return "overdue"
    return "soon" if due <= add_working_days(today, soon_days) else "running"


def work_order(cases: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Urgent first (71), then the earliest open deadline, then the earliest received."""
    def key(c: dict[str, Any]) -> tuple[int, str, str]:
        return (0 if c.get("urgent") else 1, str(c.get("next_due") or "9999-12-31"),
                str(c.get("received_at") or ""))
    return sorted(cases, key=key)
