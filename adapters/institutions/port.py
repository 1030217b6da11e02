"""What the hub needs from both sides of an F14 reconciliation (对账).

The institutions' HIS and the core's settlement ledger (结算库) answer the same national
transactions: 3201 (their totals of a day) and 3202 + 9102 (their detail of a day as a
file). The institutions also take the resolution of a 单边帐: 2208 冲正 and H3203 补记.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol

from contracts.institution_recon import DayTotals, DetailRow

__all__ = ["InstitutionsPort", "LedgerPort"]


class LedgerPort(Protocol):
    """Raises only ``contracts.errors`` exceptions: TransientError or PermanentError subclasses."""

    async def totals(self, code: str, day: date) -> DayTotals:
        """3201: this side's totals of institution ``code`` on ``day``."""
        ...

    async def detail(self, code: str, day: date) -> list[DetailRow]:
        """3202 then 9102: this side's settlements of ``code`` on ``day``, from its file."""
        ...

    async def aclose(self) -> None: ...


class InstitutionsPort(LedgerPort, Protocol):
    """The designated institutions' HIS, one endpoint each behind the gateway."""

    async def reverse(self, code: str, row: dict[str, Any], *, serial: str) -> None:
        """2208 冲正 of an institution-only settlement; a repeated ``serial`` is one effect."""
        ...

    async def complete(self, code: str, row: dict[str, Any], *, serial: str) -> None:
        """H3203 补记 of a core-only settlement at the institution; one effect per ``serial``."""
        ...
