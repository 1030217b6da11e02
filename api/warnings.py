"""Admin API of F8 高额费用预警 (high-expense warnings).

    POST /admin/warnings/runs                       ``{"month": "YYYYMM"}``: run a month
                                                    (operations or caseworker); a second run
                                                    of the month publishes nothing
    GET  /admin/warnings/runs/{month}               progress: per department, warnings per
                                                    status (acknowledged ...); ``detail=true``
                                                    lists them, masked (any role)
    POST /admin/warnings/runs/{month}/resend        ``{"department": ..., "only_unacknowledged":
                                                    false}``: 补发 a department's list (caseworker)

Every answer is masked (``storage.warnings.masked_row``); runs and resends are audited.
The work is ``services.warnings``.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from api.auth import Principal
from api.deps import Caseworker, Reader, State, require
from api.problems import hub_problem, problem
from contracts.errors import PermanentError, TransientError
from contracts.warnings import MONTH_RE, RunRequest
from services.resender import ANONYMOUS
from services.warnings import WarningRuns
from storage.warnings import WarningStore

__all__ = ["router"]

router = APIRouter(tags=["admin: high-expense warnings (F8)"])

Month = Annotated[str, Path(pattern=MONTH_RE.pattern)]
RunRole = Annotated[Principal, Depends(require("operations", "caseworker"))]
Department = Literal["civil_affairs", "agriculture", "veterans", "union"]
_BUSY: Final = 503


class ResendRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    department: Department
    only_unacknowledged: bool = False


async def _runs(state: State) -> WarningRuns:
    store = state.deps.warnings
    if not isinstance(store, WarningStore):
        raise RuntimeError("no warning store in this hub")
    return WarningRuns(store=store, core=state.deps.core, publisher=state.deps.publisher,
                       settings=state.deps.settings.warnings, audit=state.audit)


Runs = Annotated[WarningRuns, Depends(_runs)]


def _error(exc: Exception) -> JSONResponse:
    if isinstance(exc, TransientError):
        return hub_problem(exc, _BUSY)
    assert isinstance(exc, PermanentError)
    return hub_problem(exc, 422)


@router.post("/admin/warnings/runs", summary="Run a month's high-expense warnings (F8)")
async def run_month(body: RunRequest, principal: RunRole, runs: Runs) -> JSONResponse:
    try:
        result = await runs.run(body.month, principal.user, principal.role)
    except (PermanentError, TransientError) as exc:
        return _error(exc)
    return JSONResponse(result, status_code=202)


@router.get("/admin/warnings/runs/{month}",
            summary="A month's warnings per department and status, with acknowledgements")
async def run_status(month: Month, principal: Reader, runs: Runs,
                     detail: bool = False,
                     department: Annotated[Department | None, Query()] = None) -> JSONResponse:
    status = await runs.status(month, detail=detail, department=department)
    if status is None:
        return problem(404, f"no warning run for {month}")
    return JSONResponse(status)


@router.post("/admin/warnings/runs/{month}/resend",
             summary="补发: a department's list of a month again (caseworker)")
async def resend(month: Month, body: ResendRequest, principal: Caseworker,
                 runs: Runs) -> JSONResponse:
    who = principal or ANONYMOUS
    try:
        result = await runs.resend(month, body.department, who.user, who.role,
                                   only_unacknowledged=body.only_unacknowledged)
    except (PermanentError, TransientError) as exc:
        return _error(exc)
    return JSONResponse(result, status_code=202)
