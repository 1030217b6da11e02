"""Operations endpoints: health, breakers, transaction lookups, 比对 report downloads.

    GET /health                          liveness: 200 while the process serves (open)
    GET /health/live                     liveness without touching anything (open)
    GET /health/ready                    readiness: 503 while the broker, Redis or the
                                         database is unreachable (open)
    GET /admin/breakers                  circuit breaker state per partner
    POST /admin/breakers/{partner}/reset close a partner's breaker now (operations,
                                         admin; audited)
    GET /transactions?person=<ID number> a person's (or ``?unit=<credit code>``: a unit's)
                                         transactions, newest first, masked; matched on
                                         a keyed hash (``services.transactions``); the
                                         search is audited (it names a person);
                                         ``reveal=true``: keys unmasked (caseworker, admin)
    GET /transactions/summary            transactions counted by status
    GET /transactions/{correlation_id}   one transaction and its interaction log, masked;
                                         ``?reveal=true``: unmasked (caseworker, admin; audited)
    GET /transactions/{correlation_id}/path
                                         its hops in order, each with partner, operation,
                                         outcome, start, end and the gap since the last
    GET /admin/reports/compare/{name}    a 比对 difference report (caseworker, admin; audited)

Everything but the health checks needs a token of any role; personal data in full
(a report names people with their ID numbers) only for the roles whose work needs
it, each read written to the audit log.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse

from api.auth import Principal, Role
from api.deps import HubDeps, Operator, Reader, State, require, require_reader
from contracts.masking import mask_value
from contracts.subjects import SubjectKind
from routes.compare import REPORTS_DIR
from services import transactions as txns

__all__ = ["FULL_READERS", "mask_business_key", "router"]

router = APIRouter()
_READ = [Depends(require_reader)]
_REPORT = re.compile(r"[A-Za-z0-9_.\-]{1,64}\.(csv|xlsx)")
FULL_READERS: tuple[Role, ...] = ("caseworker", "admin")
"""Roles that may see personal data unmasked: a caseworker acts on one person's record."""

FullReader = Annotated[Principal, Depends(require(*FULL_READERS))]
PartnerName = Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")]


mask_business_key = txns.mask_business_key


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


@router.post("/admin/breakers/{partner}/reset", tags=["ops"],
             summary="Close a partner's circuit breaker now (operations, admin; audited)",
             responses={404: {"description": "the partner has no breaker (never called)"}})
async def reset_breaker(partner: PartnerName, who: Operator, state: State) -> dict[str, Any]:
    before = state.deps.breakers.reset(partner)
    if before is None:
        raise HTTPException(404, f"no breaker for partner {partner}")
    await state.audit.record(who.user, who.role, "breaker.reset", partner,
                             {"was": before["state"],
                              "recent_failures": before["recent_failures"]})
    return {"partner": partner, "was": before["state"],
            "now": state.deps.breakers.get(partner).snapshot()}


def _invalid(field: str, reason: str) -> RequestValidationError:
    """A 422 naming the query field, through the app's error handler (no value echoed)."""
    return RequestValidationError([{"loc": ("query", field), "msg": reason,
                                    "type": "value_error"}])


@router.get("/transactions", tags=["ops"],
            summary="A person's (person=ID number) or a unit's (unit=credit code) "
                    "transactions, newest first, masked; audited",
            responses={422: {"description": "neither or both given, or a bad check character"}})
async def search_transactions(
    request: Request, who: Reader, state: State,
    person: Annotated[str | None, Query(max_length=40,
                                        description="居民身份证号 (18 characters)")] = None,
    unit: Annotated[str | None, Query(max_length=40,
                                      description="统一社会信用代码 (18 characters)")] = None,
    reveal: Annotated[bool, Query(description="business keys unmasked "
                                              "(caseworker, admin)")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> dict[str, Any]:
    if (person is None) == (unit is None):
        raise _invalid("person" if person is None else "unit",
                       "give exactly one of person (ID number) or unit (credit code)")
    kind: SubjectKind = "person" if person is not None else "unit"
    if reveal and who.role not in FULL_READERS:
        await state.auth.forbid(request, who, FULL_READERS, "see unmasked")
    try:
        page = await txns.search_by_subject(state.deps.journal, person or unit or "",
                                            kind=kind, limit=limit, offset=offset,
                                            reveal=reveal)
    except txns.InvalidSubject as exc:
        raise _invalid(exc.field, exc.reason) from None
    await state.audit.record(who.user, who.role, "transaction.search",
                             f"{kind}:{page.subject}",
                             {"reveal": reveal, "found": page.total, "offset": offset})
    return page.as_dict()


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


@router.get("/transactions/{correlation_id}/path", tags=["ops"],
            summary="One transaction's hops in order with their timings (masked)",
            responses={404: {"description": "no such transaction"}})
async def transaction_path(correlation_id: str, _who: Reader, deps: HubDeps) -> dict[str, Any]:
    hops = await txns.path(deps.journal, correlation_id)
    if hops is None:
        raise HTTPException(404, f"no transaction {correlation_id}")
    total = (hops[-1].ended - hops[0].started).total_seconds() * 1000 if hops else 0
    return {"correlation_id": correlation_id, "hops": [h.as_dict() for h in hops],
            "elapsed_ms": int(total)}
