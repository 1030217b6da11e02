"""What the hub needs from 用友 finance (F10 退费), independent of HTTP."""

from __future__ import annotations

from typing import Any, Protocol

from contracts.finance import OrderAnswer, PaymentQuery, PaymentsAnswer, WithdrawAnswer

__all__ = ["FinancePort"]


class FinancePort(Protocol):
    """Raises only ``contracts.errors`` exceptions: TransientError or PermanentError subclasses
    (a business refusal is ``BusinessRejected`` with finance's code)."""

    async def submit_order(self, order: dict[str, Any], *, serial: str) -> OrderAnswer:
        """A version of a refund order (``contracts.finance.order_payload``); finance answers
        success or failure per order (2265) and replays its answer for a repeated
        order number and version."""
        ...

    async def withdraw(self, order_no: str, version: int, reason: str, *,
                       serial: str) -> WithdrawAnswer:
        """退费回退 (1917): finance will never pay the order (any version, even one it has
        not received yet), unless it paid already (answer ``paid``)."""
        ...

    async def send_closure(self, page: dict[str, Any], *, serial: str) -> dict[str, Any]:
        """A page of a 旬 销号 batch (``ClosurePage``); finance checks it against its
        payments and totals and answers what it took; a repeated serial is replayed."""
        ...

    async def payments(self, query: PaymentQuery) -> PaymentsAnswer:
        """What finance paid to a unit's account in a span (网办大厅, 2576, 2596)."""
        ...

    async def aclose(self) -> None: ...
