"""F7 医疗救助平台: its queries, core's settlements, the monthly 医疗救助结算数据.

    POST /partners/assistance/queries/expenses   医疗费用查询 (1497): a recognised
                                                 困难人员's expenses in a period (signed as
                                                 ``assistance``; masked)
    POST /partners/core/settlements              结算费用同步 (1497): core reports one
                                                 settlement (H4005, national envelope,
                                                 signed as ``core``)
    POST /admin/assistance/settlement-runs       ``{"month": "yyyy-MM"}``: the month's
                                                 医疗救助结算数据 (1487), extracted and pushed
                                                 (caseworker or operations; audited; a
                                                 second run pushes nothing twice)
    GET  /admin/assistance/settlement-runs       the runs, latest month first
    GET  /admin/assistance/settlements           the settlements held (``?month=yyyyMM``,
                                                 ``?sync_status=dead``), masked

Refusals name the field and the reason. The work is ``services.assistance``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from api.auth import Principal
from api.body import BodyRefused, read_body
from api.callers import PARTNER_PARAMETERS, CallerRefused, authenticate_partner, note
from api.deps import Reader, State, require
from api.problems import answer, hub_problem
from contracts.assistance import ExpenseQuery, parse_run_month
from contracts.difficulty import ASSISTANCE
from contracts.errors import HubError, PermanentError, TransientError, ValidationFailed
from contracts.masking import mask_text
from contracts.national import NationalResponse
from services.assistance import AssistanceDesk, Refused
from storage.assistance import AssistanceStore, masked

__all__ = ["router"]

router = APIRouter(tags=["F7 医疗救助平台"])

RunRole = Annotated[Principal, Depends(require("caseworker", "operations"))]


async def _desk(state: State) -> AssistanceDesk:
    store = state.deps.assistance
    if not isinstance(store, AssistanceStore):
        raise RuntimeError("no F7 assistance store in this hub")
    return AssistanceDesk(store=store, core=state.deps.assistance_core,
                          publisher=state.deps.publisher,
                          partners=state.deps.difficulty_partners, audit=state.audit)


Desk = Annotated[AssistanceDesk, Depends(_desk)]


def _errors(exc: ValidationError) -> list[dict[str, str]]:
    out = []
    for e in exc.errors(include_url=False):
        msg = str(e["msg"]).removeprefix("Value error, ")
        where = ".".join(str(p) for p in e["loc"])
        if not where and ":" in msg:  # a whole-body check names its field first
            where, msg = (p.strip() for p in msg.split(":", 1))
        out.append({"field": where or "body", "reason": mask_text(msg)})
    return out


def _core_error(exc: HubError) -> JSONResponse:
    """Core could not answer (503) or answered what cannot be used (502)."""
    return JSONResponse({"code": exc.public_code, "field": "core",
                         "reason": mask_text(exc.public_text)},
                        status_code=503 if isinstance(exc, TransientError) else 502)


async def platform_body(request: Request, state: State) -> bytes:
    """The body of a query the 医疗救助平台 signed (``partners.assistance``); a hub without
    the platform's secret takes none (401). Raises ``BodyRefused`` or ``CallerRefused``."""
    door = "assistance queries"
    body = await read_body(request, state.deps.settings.max_body_bytes)
    config = state.deps.settings.partners.get(ASSISTANCE)
    if config is None or not config.secret.get_secret_value():
        raise note(door, request, CallerRefused(
            401, "UNAUTHORIZED", "partner", "this hub takes no queries from the "
            "platform (partners.assistance with a secret)"))
    await authenticate_partner(state, request, body, door=door, allowed=(ASSISTANCE,))
    return body


@router.post("/partners/assistance/queries/expenses", openapi_extra={
    "parameters": PARTNER_PARAMETERS},
    summary="医疗费用查询 for the 医疗救助平台: a recognised 困难人员's expenses in a period")
async def expenses(request: Request, state: State, desk: Desk) -> JSONResponse:
    try:
        body = await platform_body(request, state)
    except (BodyRefused, CallerRefused) as exc:
        return JSONResponse({"code": exc.code, "field": exc.field, "reason": exc.reason},
                            status_code=exc.status)
    try:
        query = ExpenseQuery.model_validate_json(body)
    except ValidationError as exc:
        return JSONResponse({"code": "INVALID", "errors": _errors(exc)}, status_code=422)
    try:
        return JSONResponse(await desk.expenses(query))
    except Refused as exc:
        return JSONResponse(exc.as_dict(), status_code=exc.status)
    except HubError as exc:
        return _core_error(exc)


def _national(status: int, code: str, reason: str) -> JSONResponse:
    return JSONResponse(NationalResponse.failure(mask_text(reason), code=code).model_dump(
        mode="json"), status_code=status)


@router.post("/partners/core/settlements", openapi_extra={"parameters": PARTNER_PARAMETERS},
             summary="结算费用同步: core reports a settlement (H4005); a recipient's goes to "
                     "the 医疗救助平台")
async def core_settlement(request: Request, state: State, desk: Desk) -> JSONResponse:
    door = "core settlements"
    try:
        body = await read_body(request, state.deps.settings.max_body_bytes)
        await authenticate_partner(state, request, body, door=door, allowed=("core",))
    except (BodyRefused, CallerRefused) as exc:
        return _national(exc.status, exc.code, f"{exc.field}: {exc.reason}")
    try:
        out = await desk.receive_event(body)
    except ValidationFailed as exc:
        return _national(422 if exc.field != "body" else 400, exc.public_code, exc.reason)
    except Refused as exc:
        return _national(exc.status, exc.code, f"{exc.field}: {exc.reason}")
    return JSONResponse(NationalResponse.success(out).model_dump(mode="json"))


class RunRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    month: str = Field(description="yyyy-MM (or yyyyMM): the month whose settlements to send")

    @field_validator("month")
    @classmethod
    def _month(cls, v: str) -> str:
        return parse_run_month(v)


@router.post("/admin/assistance/settlement-runs",
             summary="A month's 医疗救助结算数据: extracted from core and pushed to the platform")
async def run_month(body: RunRequest, principal: RunRole, desk: Desk) -> JSONResponse:
    try:
        got = await desk.run_month(body.month, principal)
    except ValidationFailed as exc:
        if exc.partner == "core":  # core answered what cannot be used
            return hub_problem(exc, 502)
        return hub_problem(exc, 422)
    except (PermanentError, TransientError) as exc:
        return hub_problem(exc, 503 if isinstance(exc, TransientError) else 502)
    return answer(200 if got["complete"] else 502, got)


@router.get("/admin/assistance/settlement-runs", summary="The months' 医疗救助结算数据 runs")
async def runs(principal: Reader, desk: Desk,
               limit: Annotated[int, Query(ge=1, le=120)] = 24) -> JSONResponse:
    return JSONResponse({"runs": await desk.runs(limit=limit)})


@router.get("/admin/assistance/settlements",
            summary="Recipients' settlements the hub holds (masked)")
async def settlements(principal: Reader, desk: Desk,
                      month: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
                      sync_status: Literal["pending", "queued", "delivered", "rejected",
                                           "dead"] | None = None,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                      offset: Annotated[int, Query(ge=0, le=2**31)] = 0) -> JSONResponse:
    rows = await desk.store.settlements(month=month, sync_status=sync_status, limit=limit,
                                        offset=offset)
    out: list[dict[str, Any]] = [masked(r) for r in rows]
    return JSONResponse({"settlements": out})
