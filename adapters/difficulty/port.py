"""What the hub needs from the F7 partners: the 医疗救助平台 and the four departments."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["DifficultyPort"]


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

    async def push_sunshine(self, page: dict[str, Any], *, serial: str) -> None:
        """A page of the day's 救助人员 table to 阳光惠民 (1497); a repeated ``serial`` is
        dropped."""
        ...

    async def aclose(self) -> None: ...
