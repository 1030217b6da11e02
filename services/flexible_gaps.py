"""灵活信息税务补发, detected (seed 1862-1865): which flexible workers tax must be sent again.

    对于医保系统中存在的正常参保人员信息，税务方不存在的。或医保系统中存在终止、暂停或中止
    的参保人员的基础信息、参保信息，与税务不同步，通过与税务规定的交易进行信息补发。

Core's flexible workers (H1105 ``flexible``: ID, name, status 1 正常 2 暂停 3 终止
4 中止) are compared person by person with tax's answer to ``QueryFlexibleEnrollment``
(status 1 正常 2 暂停 3 终止; no record: tax does not have the person):

    core 正常, tax has nobody           -> enroll     (FlexibleEnroll)
    core 暂停, tax not 暂停              -> stop       (FlexibleSuspend)
    core 终止 or 中止, tax not 终止      -> terminate  (FlexibleTerminate)
    core 正常, tax 暂停 or 终止          -> reported, not resent: tax holds a later
                                          change core does not; a caseworker decides
    core 暂停/终止, tax has nobody       -> reported, not resent: nothing to stop there

``gap_of`` is the pure rule; ``find_gaps`` asks core once and tax once per person, a few
at a time on the query lane. Resending what was found is the ordinary audited
``Resender`` (one ``RecordResendRequest`` each), so detection adds no new way to reach tax.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from adapters.core.port import CorePort
from adapters.tax.port import TaxPort
from contracts.envelope import new_id
from contracts.masking import mask_id, mask_name
from contracts.taxcat import model_for

__all__ = ["CORE_STATUS", "Gap", "find_gaps", "gap_of"]

CORE_STATUS: Final = {"1": "正常", "2": "暂停", "3": "终止", "4": "中止"}
_TAX_STATUS: Final = {"1": "正常", "2": "暂停", "3": "终止"}
Action = Literal["enroll", "stop", "terminate"]


@dataclass(frozen=True)
class Gap:
    """One flexible worker core and tax disagree about, and the resend that fixes it."""

    id_number: str
    name: str
    core_status: str
    tax_status: str | None
    """None: tax has no record of the person."""
    action: Action | None
    """None: reported for a caseworker, not resent (see the module's table)."""
    why: str

    def public(self) -> dict[str, Any]:
        """As an API answer: ID number and name masked."""
        return {"id_number": mask_id(self.id_number), "name": mask_name(self.name),
                "core_status": self.core_status, "tax_status": self.tax_status,
                "action": self.action, "why": self.why}


def gap_of(core_row: Mapping[str, Any], tax_rows: Sequence[Mapping[str, Any]]) -> Gap | None:
    """The difference between core's record and tax's answer, or None when they agree."""
    id_number, name = str(core_row["id_number"]), str(core_row.get("name") or "")
    core = str(core_row.get("status") or "1")
    tax = str(tax_rows[0].get("status") or "1") if tax_rows else None
    said = (f"core {CORE_STATUS.get(core, core)}, tax "
            f"{_TAX_STATUS.get(tax, tax) if tax else '无记录'}")

    def gap(action: Action | None, why: str) -> Gap:
        return Gap(id_number, name, core, tax, action, f"{said}: {why}")

    if core == "1":
        if tax is None:
            return gap("enroll", "normal in core, missing at tax")
        if tax != "1":
            return gap(None, "tax holds a later stop core does not; check before resending")
        return None
    if tax is None:
        return gap(None, "stopped in core and unknown to tax; nothing to stop there")
    if core == "2" and tax != "2":
        return gap("stop", "暂停 in core, not at tax")
    if core in ("3", "4") and tax != "3":
        return gap("terminate", f"{CORE_STATUS[core]} in core, not 终止 at tax")
    return None


async def find_gaps(core: CorePort, tax: TaxPort, *, limit: int,
                    concurrency: int = 8) -> tuple[int, list[Gap]]:
    """(records checked, gaps found) over the first ``limit`` of core's flexible workers."""
    rows = await core.snapshot("flexible", limit=limit)
    query = model_for("QueryFlexibleEnrollment")
    gate = asyncio.Semaphore(concurrency)

    async def one(row: Mapping[str, Any]) -> Gap | None:
        async with gate:
            answer = await tax.query("QueryFlexibleEnrollment", query.model_validate(
                {"id_number": row["id_number"]}), serial=new_id())
        return gap_of(row, answer)

    found = await asyncio.gather(*(one(r) for r in rows))
    return len(rows), [g for g in found if g is not None]
