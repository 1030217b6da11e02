"""What the hub needs from the medical-insurance core, independent of HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date
from typing import Any, Protocol

from contracts.assistance import Institution, Settlement, Totals
from contracts.channels import TransferDestination
from contracts.drugs import CatalogueDrug, Eligibility
from contracts.employee import EmployeeEnrollment, SyncStatusUpdate
from contracts.returnfile import ReturnRecord
from contracts.warnings import SelfPaid

__all__ = ["AssistanceCorePort", "CorePort"]


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

    def snapshot_pages(self, kind: str) -> AsyncIterator[list[dict[str, Any]]]:
        """比对: the same records as ``snapshot``, a page at a time, for a caller that
        streams them (a city's extract need not be held in memory)."""
        ...

    async def snapshot(self, kind: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        """比对: core's current records of one kind (unit, employee, resident), in the field
        names of ``contracts/RECONCILE.md`` (H1105); with ``limit`` only the first so many
        (core pages them, so the rest is never asked for)."""
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

    async def sync_transfer(self, payload: dict[str, Any], *, serial: str) -> None:
        """F9: a transfer's status change (转移接续结果, H4201); ``payload`` is
        ``contracts.transfer.status_payload``; idempotent on ``serial``."""
        ...

    async def drug_eligibility(self, id_number: str) -> Eligibility:
        """F11 医保资格 (3280): insured and in a normal state at core (H6101)."""
        ...

    async def drug_catalogue(self) -> list[CatalogueDrug]:
        """F11 处方药管理 (3270-3271): core's drug catalogue with the 处方药 flag (H6102)."""
        ...

    async def refund_status(self, payload: dict[str, Any], *, serial: str) -> None:
        """F10: where a refund order stands (refunded with 已退费, failed, withdrawn,
        refused; ``contracts.finance.core_status_message``) (H7101); idempotent on
        ``serial``."""
        ...

    async def aclose(self) -> None: ...


class AssistanceCorePort(Protocol):
    """F7 医疗救助平台: what core tells the hub about recipients' settlements (1482, 1487,
    1497). A port of its own (the ``CoreClient`` implements both): only the assistance
    desk and the 阳光惠民 run use it. Raises only ``contracts.errors`` exceptions."""

    async def expenses(self, id_number: str, start: date, end: date) -> list[Settlement]:
        """医疗费用查询: the person's settlements settled from ``start`` to ``end`` (H4002)."""
        ...

    async def month_settlements(self, month: str, id_numbers: Sequence[str]
                                ) -> tuple[Totals, list[Settlement]]:
        """救助对象结算信息提取: the settlements of ``id_numbers`` in ``month`` (yyyyMM) and
        core's header (count and sums) they must add up to (H4003)."""
        ...

    async def institutions(self) -> list[Institution]:
        """定点医疗机构 (H4004), for 阳光惠民's 机构 table."""
        ...
