"""F12 trade-union mutual aid (工会互助): the union's signed door and the caseworkers' API.

The union's door (signed by partner ``trade_union``: ``X-Partner`` headers, HMAC-SHA256
with ``partners.trade_union.secret``, like core and tax; 401/403 otherwise):

    PUT  /partners/union/standards/{year}       申请互助待遇人员清单, 给付标准, 审核规则
    POST /partners/union/cases                  a case (给付申请书 + scanned images):
                                                201 new (accepted or refused, told to
                                                the unit and the union), 200 the same
                                                again, 409 the case number with other
                                                content, 422 naming each bad field
    POST /partners/union/cases/{case_no}/final  终审结案: the archive timer starts

Bodies carry images, so the door's limit is ``union.max_body_bytes``.

Caseworkers (reading: every role; acting: ``caseworker``), answers masked:

    GET  /admin/union/cases?due=soon|overdue&status=...   urgent first, then deadline
    GET  /admin/union/cases/{case_id}
    POST /admin/union/cases/{case_id}   investigate | await_applicant | resume | close |
                                        archive | resend (补发, ``notice``)
    GET  /admin/union/alerts            breached timers
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Final, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from api.body import BodyRefused, read_body
from api.callers import (
    PARTNER_PARAMETERS,
    CallerRefused,
    authenticate_partner,
    note,
    refusals,
    who_knocks,
)
from api.deps import Caseworker, Reader, State
from api.problems import problem
from contracts.errors import field_errors
from contracts.masking import mask_text
from contracts.union import CASE_NO, CaseApplication, FinalNotice, UnionStandards
from services.resender import ANONYMOUS
from services.union import CaseAction, UnionDesk
from storage.union import UnionStore

__all__ = ["router"]

router = APIRouter(tags=["F12 trade-union mutual aid"])
M = TypeVar("M", bound=BaseModel)

PARTNER: Final = "trade_union"
_DOC: Final = {"parameters": PARTNER_PARAMETERS}
_STATUS: Final = {"not_found": 404, "conflict": 409, "invalid": 422}
_LEAD = re.compile(r"^([A-Za-z_][\w.]*): (.+)$", re.S)
CaseId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[0-9a-f]+$")]
CaseNo = Annotated[str, Path(pattern=CASE_NO[:-1] + "$")]


def _desk(state: State) -> UnionDesk | None:
    store = state.deps.union
    if not isinstance(store, UnionStore):
        return None
    return UnionDesk(store=store, publisher=state.deps.publisher, audit=state.audit,
                     soon_days=state.deps.settings.union.soon_days)


Desk = Annotated[UnionDesk | None, Depends(_desk)]


def _no_desk() -> JSONResponse:
    return problem(503, "this hub keeps no union cases", code="UNAVAILABLE")


def _errors(exc: ValidationError) -> list[dict[str, str]]:
    """Each bad field and why; a whole-case check names its field at the start."""
    out = []
    for where, why in field_errors(exc, default="case"):
        m = _LEAD.match(why) if where == "case" else None
        if m:
            where, why = m.group(1), m.group(2)
        out.append({"field": where, "reason": mask_text(why)})
    return out


def _refused(exc: BodyRefused | CallerRefused) -> JSONResponse:
    return JSONResponse({"code": exc.code, "field": exc.field, "reason": exc.reason},
                        status_code=exc.status)


async def _take(state: State, request: Request, door: str) -> bytes:
    try:
        body = await read_body(request, state.deps.settings.union.max_body_bytes)
    except BodyRefused as exc:
        refusals.refused(door, who_knocks(request), exc.status, exc.field, exc.reason)
        raise
    cfg = state.deps.settings.partners.get(PARTNER)
    if cfg is None or not cfg.secret.get_secret_value():  # an empty key proves nothing
        raise note(door, request, CallerRefused(
            401, "UNAUTHORIZED", "X-Partner",
            f"this hub has no secret for {PARTNER}: every call is refused"))
    await authenticate_partner(state, request, body, door=door, allowed=(PARTNER,))
    return body


def _parse(model: type[M], body: bytes) -> M | JSONResponse:
    try:
        data: Any = json.loads(body)
    except ValueError as exc:
        return JSONResponse({"code": "VALIDATION", "errors": [
            {"field": "body", "reason": f"not JSON: {exc}"}]}, status_code=400)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        return JSONResponse({"code": "VALIDATION", "errors": _errors(exc)}, status_code=422)


@router.put("/partners/union/standards/{year}", openapi_extra=_DOC,
            summary="The union's tables of a year: roster, 给付标准, 审核规则")
async def put_standards(year: Annotated[int, Path(ge=2000, le=2100)], request: Request,
                        state: State, desk: Desk) -> JSONResponse:
    try:
        body = await _take(state, request, "union standards")
    except (BodyRefused, CallerRefused) as exc:
        return _refused(exc)
    if desk is None:
        return _no_desk()
    tables = _parse(UnionStandards, body)
    if isinstance(tables, JSONResponse):
        return tables
    return JSONResponse(await desk.put_standards(year, tables))


@router.post("/partners/union/cases", openapi_extra=_DOC,
             summary="A mutual-aid case (给付申请书 with scanned images)")
async def submit_case(request: Request, state: State, desk: Desk) -> JSONResponse:
    try:
        body = await _take(state, request, "union cases")
    except (BodyRefused, CallerRefused) as exc:
        return _refused(exc)
    if desk is None:
        return _no_desk()
    app = _parse(CaseApplication, body)
    if isinstance(app, JSONResponse):
        return app
    result = await desk.submit(app)
    code = {"created": 201, "same": 200, "conflict": 409}[result.outcome]
    return JSONResponse({"outcome": result.outcome, "case": result.case}, status_code=code)


@router.post("/partners/union/cases/{case_no}/final", openapi_extra=_DOC,
             summary="The union's 终审结案 of a case")
async def final_case(case_no: CaseNo, request: Request, state: State,
                     desk: Desk) -> JSONResponse:
    try:
        body = await _take(state, request, "union final")
    except (BodyRefused, CallerRefused) as exc:
        return _refused(exc)
    if desk is None:
        return _no_desk()
    notice = _parse(FinalNotice, body)
    if isinstance(notice, JSONResponse):
        return notice
    result = await desk.final(case_no, notice)
    return JSONResponse({"detail": result.detail, "case": result.case},
                        status_code=_STATUS.get(result.outcome, 200))


@router.get("/admin/union/cases", summary="Union cases with their timers (urgent first)")
async def list_cases(principal: Reader, desk: Desk,
                     due: Literal["soon", "overdue"] | None = None,
                     status: str | None = Query(default=None, max_length=20),
                     limit: Annotated[int, Query(ge=1, le=2000)] = 500) -> JSONResponse:
    if desk is None:
        return _no_desk()
    return JSONResponse(await desk.overview(due=due, status=status, limit=limit))


@router.get("/admin/union/alerts", summary="Breached union-case timers")
async def list_alerts(principal: Reader, desk: Desk) -> JSONResponse:
    if desk is None:
        return _no_desk()
    await desk.sweep()
    return JSONResponse({"alerts": await desk.alerts()})


@router.get("/admin/union/cases/{case_id}", summary="One union case")
async def get_case(case_id: CaseId, principal: Reader, desk: Desk) -> JSONResponse:
    if desk is None:
        return _no_desk()
    case = await desk.get(case_id)
    if case is None:
        return problem(404, f"no union case {case_id}")
    return JSONResponse(case)


@router.post("/admin/union/cases/{case_id}", summary="Act on a union case (caseworker)")
async def act_on_case(case_id: CaseId, body: CaseAction, principal: Caseworker,
                      desk: Desk) -> JSONResponse:
    if desk is None:
        return _no_desk()
    result = await desk.act(case_id, body, principal or ANONYMOUS)
    if result.outcome != "ok":
        return problem(_STATUS[result.outcome], result.detail, code=result.outcome.upper(),
                       case=result.case)
    return JSONResponse({"detail": result.detail, "case": result.case},
                        status_code=202 if body.action in ("close", "archive", "resend")
                        else 200)
