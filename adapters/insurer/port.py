"""What the hub needs from the 大病保险承办机构 (seed 004 lines 28-29, 39, 71, 75, 77, 111,
123, 126)."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["InsurerPort"]


class InsurerPort(Protocol):
    """Raises only ``contracts.errors`` exceptions: TransientError (retried) or
    PermanentError (BusinessRejected with the insurer's code and reason; ClientError)."""

    async def push_share(self, share: dict[str, Any], *, serial: str) -> None:
        """A settlement's 大病 segment, or its 冲销 (77); a repeated ``serial`` is a replay."""
        ...

    async def push_financing(self, notice: dict[str, Any], *, serial: str) -> None:
        """A financing notice: paying residents, 筹资, the year's transfers (29, 39)."""
        ...

    async def push_clue(self, clue: dict[str, Any], *, serial: str) -> None:
        """A 疑点数据 clue (123, 126)."""
        ...

    async def fetch_batch(self, kind: str, period: str) -> dict[str, Any]:
        """An inbound batch (赔付明细, 分析报告, 75): ``{"header": ..., "rows": [...]}``."""
        ...

    async def push_batch(self, kind: str, period: str, batch: dict[str, Any], *,
                         serial: str) -> dict[str, Any]:
        """An outbound batch (清算 71, 轧差 28); the insurer checks its header against its
        rows and answers what it took."""
        ...

    async def aclose(self) -> None: ...
