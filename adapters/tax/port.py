"""What the hub needs from the tax bureau (税务 统模式), independent of SOAP."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel

from contracts.employee import EmployeeEnrollment, TaxAck

__all__ = ["TaxPort"]


class TaxPort(Protocol):
    """Raises only ``contracts.errors`` exceptions: TransientError or PermanentError subclasses."""

    async def enroll_employee(self, req: EmployeeEnrollment, *, serial: str) -> TaxAck:
        """职工参保登记. ``serial`` is the 业务流水号 tax deduplicates on (the message id)."""
        ...

    async def submit(self, operation: str, req: BaseModel, *, serial: str) -> TaxAck:
        """Any submit of the catalogue (``contracts.taxcat``), 职工暂停/终止参保
        (``EmployeeStop``) included; same serial rule as ``enroll_employee``."""
        ...

    async def query(self, operation: str, req: BaseModel, *, serial: str) -> list[dict[str, str]]:
        """A catalogue query (F4), answered synchronously on the query lane; records by
        canonical name. Times out after the partner's query timeout (PartnerTimeout)."""
        ...

    async def aclose(self) -> None: ...
