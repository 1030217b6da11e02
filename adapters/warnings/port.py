"""What the hub needs from a department receiving F8 warning lists, independent of HTTP."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["DepartmentPort"]


class DepartmentPort(Protocol):
    """Raises only ``contracts.errors`` exceptions: TransientError or PermanentError subclasses."""

    async def send_warning(self, department: str, payload: dict[str, Any]) -> str:
        """One person of a month's list (``contracts.warnings.warning_message`` payload) to
        ``department``; returns the department's acknowledgement number. The department
        deduplicates on ``payload["serial"]`` (a repeat gets the first acknowledgement)."""
        ...

    async def aclose(self) -> None: ...
