"""Operations endpoints: health, breakers, transaction lookups, 比对 report downloads.

    GET /health                          liveness: 200 while the process serves (open)
    GET /health/live                     liveness without touching anything (open)
    GET /health/ready                    readiness: 503 while the broker, Redis or the
                                         database is unreachable (open)
    GET /admin/breakers                  circuit breaker state per partner
    GET /transactions/summary            transactions counted by status
    GET /transactions/{correlation_id}   one transaction and its interaction log, masked;
                                         ``?reveal=true``: unmasked (caseworker, admin; audited)
    GET /admin/reports/compare/{name}    a 比对 difference report (caseworker, admin; audited)

Everything but the health checks needs a token of any role; personal data in full
(a report names people with their ID numbers) only for the roles whose work needs
it, each read written to the audit log.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse

from api.auth import Principal, Role
from api.deps import HubDeps, Reader, State, require, require_reader
from contracts.masking import mask_id, mask_text, mask_value
from routes.compare import REPORTS_DIR

__all__ = ["FULL_READERS", "mask_business_key", "router"]

router = APIRouter()
_READ = [Depends(require_reader)]
_REPORT = re.compile(r"[A-Za-z0-9_.\-]{1,64}\.(csv|xlsx)")
_USCC = re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}")
FULL_READERS: tuple[Role, ...] = ("caseworker", "admin")
"""Roles that may see personal data unmasked: a caseworker acts on one person's record."""

FullReader = Annotated[Principal, Depends(require(*FULL_READERS))]


def mask_business_key(key: str) -> str:
    """``<unit credit code>:<ID number>`` with the ID masked whatever its form (a passport
    number too); any other key with ID numbers and phones masked wherever they appear."""
    unit, sep, rest = key.partition(":")
    if sep and rest and _USCC.fullmatch(unit):
        return f"{unit}:{mask_id(rest)}"
    return mask_text(key)


@router.get("/admin/reports/compare/{name}", tags=["ops"],
            summary="Download a 比对 difference report (<batch_id>.csv or .xlsx); "
                    "caseworker or admin, audited")
async def compare_report(name: str, who: FullReader, state: State) -> Any:
    if not _REPORT.fullmatch(name) or ".." in name:
        raise HTTPException(404, f"no report {name}")
    path = REPORTS_DIR / name
    if not path.is_file():
        raise HTTPException(404, f"no report {name}")
    await state.audit.record(who.user, who.role, "report.download", f"compare:{name}",
                             {"bytes": path.stat().st_size})
    return FileResponse(path, filename=name)


@router.get("/health", tags=["ops"],
            summary="Liveness: 200 while the process serves; the body names degraded parts")
async def get_health(state: State) -> dict[str, Any]:
    return await state.health() if state.health else {"status": "ok"}


@router.get("/health/live", tags=["ops"], summary="Liveness, touching nothing")
async def live() -> dict[str, str]:
    return {"status": "alive"}


@router.get("/health/ready", tags=["ops"],
            summary="Readiness: 503 while the broker, Redis or the database is unreachable",
            responses={503: {"description": "a dependency is unreachable"}})
async def ready(state: State) -> JSONResponse:
    checks = await state.readiness() if state.readiness else {}
    ok = all(v for v in checks.values() if isinstance(v, bool))
    return JSONResponse({"status": "ready" if ok else "unavailable", **checks},
                        status_code=200 if ok else 503)


@router.get("/admin/breakers", tags=["ops"], summary="Circuit breaker state per partner",
            dependencies=_READ)
async def breakers(deps: HubDeps) -> list[dict[str, Any]]:
    return deps.breakers.snapshot()


@router.get("/transactions/summary", tags=["ops"], dependencies=_READ)
async def summary(deps: HubDeps) -> dict[str, int]:
    return await deps.journal.status_counts()


@router.get("/transactions/{correlation_id}", tags=["ops"],
            summary="One transaction and its interaction log (masked; reveal=true: "
                    "unmasked, caseworker or admin, audited)")
async def transaction(correlation_id: str, request: Request, who: Reader, state: State,
                      reveal: Annotated[bool, Query(
                          description="the business key unmasked (caseworker, admin)")] = False,
                      ) -> dict[str, Any]:
    if reveal and who.role not in FULL_READERS:
        await state.auth.forbid(request, who, FULL_READERS, "see unmasked")
    journal = state.deps.journal
    txn = await journal.transaction(correlation_id)
    if txn is None:
        raise HTTPException(404, f"no transaction {correlation_id}")
    log = await journal.log_for(correlation_id)  # details are masked when written
    if reveal:
        await state.audit.record(who.user, who.role, "transaction.view_full", correlation_id,
                                 {"business_key": mask_business_key(txn["business_key"])})
        return {"transaction": txn, "log": log}
    masked = {k: mask_business_key(str(v)) if k == "business_key" else mask_value(v, k)
              for k, v in txn.items()}
    return {"transaction": masked, "log": mask_value(log)}
