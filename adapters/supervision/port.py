"""What the hub needs from the 医保监管平台 (F11, seed 3335-3336): paid online-drug
orders and their 用药情况, pushed in real time, and their refunds."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["SupervisionPort"]


class SupervisionPort(Protocol):
    """Raises only ``contracts.errors`` exceptions: TransientError or PermanentError
    subclasses (``BusinessRejected`` when the platform refuses a record)."""

    async def push(self, record: dict[str, Any], *, serial: str) -> None:
        """One record (``kind`` order or refund); the platform drops a repeated
        ``serial``."""
        ...

    async def aclose(self) -> None: ...
