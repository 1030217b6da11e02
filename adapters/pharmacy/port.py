"""What the hub needs from a pharmacy's ERP (药房ERP, F11, seed 3330-3331, 3154-3170).

The hub sends the ERP paid orders (接单 3155) and refund requests (退款 3165); it asks
the ERP for a pharmacy's stock (库存盘点 3140) and a day's totals (对账 3170). The ERP
tells the hub of 接单, 发货, 退款 and its stock through the hub's signed door
(``api.drugs``), not through this port.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol

from contracts.drugs import ReconTotals, StockLine

__all__ = ["PharmacyPort"]


class PharmacyPort(Protocol):
    """Raises only ``contracts.errors`` exceptions: TransientError (ERP down, slow) or
    PermanentError subclasses (``BusinessRejected`` when the ERP refuses an order, e.g.
    缺货)."""

    async def push_order(self, order: dict[str, Any], *, serial: str) -> None:
        """A paid order for the pharmacy to take (接单); the ERP drops a repeated
        ``serial``."""
        ...

    async def push_refund(self, refund: dict[str, Any], *, serial: str) -> None:
        """A 退货退款 request; the ERP answers the refund later (an ``refunded`` event)."""
        ...

    async def stock(self, pharmacy_code: str) -> list[StockLine]:
        """What the pharmacy has on hand now, per drug."""
        ...

    async def reconciliation(self, pharmacy_code: str, day: date) -> ReconTotals:
        """The pharmacy's sales and refunds of ``day`` (Beijing) as the ERP counts them."""
        ...

    async def aclose(self) -> None: ...
