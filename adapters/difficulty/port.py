"""What the hub needs from the F7 partners: the 医疗救助平台 and the four departments."""

from __future__ import annotations

from typing import Any, Literal, Protocol

__all__ = ["DifficultyPort", "SunshineTable"]

SunshineTable = Literal["recipients", "fees", "institutions"]
"""阳光惠民's tables (1497): 救助人员, 救助费用, 机构; each at ``<endpoint>/<table>``."""


class DifficultyPort(Protocol):
    """Raises only ``contracts.errors`` exceptions: TransientError or PermanentError subclasses."""

    async def push_assistance(self, record: dict[str, Any], *, serial: str) -> None:
        """An approved record to the 医疗救助平台 (1527); the platform drops a repeated
        ``serial``."""
        ...

    async def push_status(self, department: str, status: dict[str, Any], *,
                          serial: str) -> None:
        """One record's 救助待遇标识同步情况 to its department's callback (1532)."""
        ...

    async def push_sunshine(self, page: dict[str, Any], *, serial: str,
                            table: SunshineTable = "recipients") -> None:
        """A page of one of the day's tables (救助人员, 救助费用, 机构) to 阳光惠民 (1497); a
        repeated ``serial`` is dropped."""
        ...

    async def push_settlement(self, record: dict[str, Any], *, serial: str) -> None:
        """结算费用同步 (1497): one recipient's settlement to the 医疗救助平台; the platform
        drops a repeated ``serial``."""
        ...

    async def push_settlement_data(self, page: dict[str, Any], *, serial: str) -> None:
        """A page of a month's 医疗救助结算数据 (1487), with the month's header (totals)."""
        ...

    async def aclose(self) -> None: ...
