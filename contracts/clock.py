"""Beijing time: the one calendar every seed rule counts in (ages, months, insure years).

Every "today" of a business rule is Beijing's, not the server's: a hub in UTC
would otherwise move a person's age or a contribution month at 16:00.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Final

__all__ = ["BEIJING", "now_beijing", "today_beijing"]

BEIJING: Final = timezone(timedelta(hours=8), "CST")


def now_beijing() -> datetime:
    return datetime.now(BEIJING)


def today_beijing() -> date:
    return datetime.now(BEIJING).date()
