"""What the hub needs from the medical-insurance core, independent of HTTP."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from contracts.channels import TransferDestination
from contracts.employee import EmployeeEnrollment, SyncStatusUpdate
from contracts.returnfile import ReturnRecord
from contracts.warnings import SelfPaid

__all__ = ["CorePort"]


class CorePort(Protocol):
    """Raises only ``contracts.errors`` exceptions: TransientError or PermanentError subclasses."""

    async def update_sync_status(self, update: SyncStatusUpdate, *, serial: str) -> None:
        """Record tax sync status in core (hub infno H9201). Idempotent on ``serial``."""
        ...

    async def get_employee(
        self, id_number: str, unit_credit_code: str
    ) -> EmployeeEnrollment | None:
        """Current enrollment in core, for resend (补发) (hub infno H1102)."""
        ...

    async def deliver(self, infno: str, data: dict[str, Any], *, serial: str) -> None:
        """Hand core what tax pushed (F3, infno H300x); core deduplicates on ``serial``."""
        ...

    async def get_record(self, subject: str, key: dict[str, str]) -> dict[str, Any] | None:
        """Core's current record of a unit, flexible worker or resident, for resend (H1103):
        canonical field names (plus ``pay_status`` 1 正常 / 2 停保 when core says), or None
        when core has no such record."""
        ...

    async def query(self, infno: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Tax asks core through the hub (F4, infno H120x): records in canonical names."""
        ...

    async def register_application(self, application: dict[str, Any]) -> str:
        """F1: core registers a channel's application (H2501) and returns its reference;
        idempotent on ``application["application_id"]``."""
        ...

    async def deliver_arrivals(self, batch_id: str, kind: str,
                               records: Sequence[ReturnRecord]) -> None:
        """F5: a 到账 batch from a tax return file (H3101); core deduplicates on ``batch_id``."""
        ...

    async def snapshot(self, kind: str) -> list[dict[str, Any]]:
        """比对: core's current records of one kind (unit, employee, resident), in the field
        names of ``contracts/RECONCILE.md`` (H1105)."""
        ...

    async def check_transfer_destination(self, id_number: str,
                                         target_division: str) -> TransferDestination:
        """转出 (seed 1841, 2526): the 转入地's view of the person (H1106)."""
        ...

    async def yearly_self_paid(self, year: int, end_month: str) -> list[SelfPaid]:
        """F8: every person's yearly 个人自付 of ``year`` up to ``end_month`` (YYYYMM), after
        基本医保 and 大病保险, with urban/rural and categories (H1107)."""
        ...

    async def sync_difficulty(self, payload: dict[str, Any], *, serial: str) -> None:
        """F7: 进入/退出 of a person's assistance identity (H4001, 1482); idempotent on
        ``serial``."""
        ...

    async def aclose(self) -> None: ...
