"""What the hub needs from the medical-insurance core, independent of HTTP."""

from __future__ import annotations

from typing import Protocol

from contracts.employee import EmployeeEnrollment, SyncStatusUpdate

__all__ = ["CorePort"]


class CorePort(Protocol):
    """Raises only ``retry.errors`` exceptions: TransientError or PermanentError subclasses."""

    async def update_sync_status(self, update: SyncStatusUpdate, *, serial: str) -> None:
        """Record tax sync status in core (hub infno H9201). Idempotent on ``serial``."""
        ...

    async def get_employee(
        self, id_number: str, unit_credit_code: str
    ) -> EmployeeEnrollment | None:
        """Current enrollment in core, for resend (补发) (hub infno H1102)."""
        ...

    async def aclose(self) -> None: ...
