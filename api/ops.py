"""Operations endpoints: health, breakers, transaction lookups, 比对 report downloads.

    GET /health                          the hub's own health check (open)
    GET /admin/breakers                  circuit breaker state per partner
    GET /transactions/summary            transactions counted by status
    GET /transactions/{correlation_id}   one transaction and its interaction log
    GET /admin/reports/compare/{name}    a 比对 difference report

Everything but ``/health`` needs a token of any role.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse

from api.deps import HubDeps, State, require_reader
from routes.compare import REPORTS_DIR

__all__ = ["router"]

router = APIRouter()
_READ = [Depends(require_reader)]
_REPORT = re.compile(r"[A-Za-z0-9_.\-]{1,64}\.(csv|xlsx)")


@router.get("/admin/reports/compare/{name}", tags=["ops"],
            summary="Download a 比对 difference report (<batch_id>.csv or .xlsx)",
            dependencies=_READ)
async def compare_report(name: str) -> Any:
    if not _REPORT.fullmatch(name) or ".." in name:
        raise HTTPException(404, f"no report {name}")
    path = REPORTS_DIR / name
    if not path.is_file():
        raise HTTPException(404, f"no report {name}")
    return FileResponse(path, filename=name)


@router.get("/health", tags=["ops"])
async def get_health(state: State) -> dict[str, Any]:
    return await state.health() if state.health else {"status": "ok"}


@router.get("/admin/breakers", tags=["ops"], summary="Circuit breaker state per partner",
            dependencies=_READ)
async def breakers(deps: HubDeps) -> list[dict[str, Any]]:
    return deps.breakers.snapshot()


@router.get("/transactions/summary", tags=["ops"], dependencies=_READ)
async def summary(deps: HubDeps) -> dict[str, int]:
    return await deps.journal.status_counts()


@router.get("/transactions/{correlation_id}", tags=["ops"], dependencies=_READ)
async def transaction(correlation_id: str, deps: HubDeps) -> dict[str, Any]:
    txn = await deps.journal.transaction(correlation_id)
    if txn is None:
        raise HTTPException(404, f"no transaction {correlation_id}")
    return {"transaction": txn, "log": await deps.journal.log_for(correlation_id)}
