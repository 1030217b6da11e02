"""F15 大病保险承办机构: core's settlements, the insurer's payments, the caseworkers' doors.

    POST /partners/core/serious-illness/settlements  core's one-stop settlement or 冲销
                                                     (H8501, national envelope, signed as
                                                     ``core``): the 大病 segment goes to the
                                                     insurer (77)
    POST /partners/insurer/payments                  the insurer paid a claim (signed as
                                                     ``insurer``): ``{"setl_id", "paid_on"}``
    POST /admin/serious-illness/financing            ``{"year", "estimated"?, "first_year"?}``:
                                                     paying residents × 110 元 and the
                                                     transfers, as a notice (29, 39; audited)
    POST /admin/serious-illness/batches              ``{"kind", "period"}``: 赔付明细, 分析报告,
                                                     清算, 轧差 (28, 71, 75; audited)
    GET  /admin/serious-illness/batches              the batches exchanged
    GET  /admin/serious-illness/claims/overdue       claims past their time limit (111),
                                                     ``?as_of=yyyy-mm-dd``, masked
    POST /admin/serious-illness/clues                a 疑点数据 clue for the insurer (123, 126)

Refusals name the field and the reason. The work is ``services.serious_illness``.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from api.auth import Principal
from api.body import BodyRefused, read_body
from api.callers import PARTNER_PARAMETERS, CallerRefused, authenticate_partner
from api.deps import Reader, State, require
from api.problems import hub_problem
from contracts.assistance import fen
from contracts.errors import HubError, TransientError, ValidationFailed
from contracts.masking import mask_text
from contracts.national import NationalResponse
from contracts.serious_illness import BATCH_KINDS, PARTNER, Clue
from services.serious_illness import Refused, SeriousIllnessDesk
from storage.serious_illness import SeriousIllnessStore

__all__ = ["router"]

router = APIRouter(tags=["F15 大病保险"])

Desk_ = Annotated[Principal, Depends(require("caseworker", "operations"))]
CaseworkerRole = Annotated[Principal, Depends(require("caseworker"))]


async def _desk(state: State) -> SeriousIllnessDesk:
    store = state.deps.serious_illness
    if not isinstance(store, SeriousIllnessStore):
        raise RuntimeError("no F15 store in this hub")
    return SeriousIllnessDesk(store=store, publisher=state.deps.publisher,
                              insurer=state.deps.insurer, audit=state.audit)


Desk = Annotated[SeriousIllnessDesk, Depends(_desk)]


def _errors(exc: ValidationError) -> list[dict[str, str]]:
    out = []
    for e in exc.errors(include_url=False):
        msg = str(e["msg"]).removeprefix("Value error, ")
        where = ".".join(str(p) for p in e["loc"])
        out.append({"field": where or "body", "reason": mask_text(msg)})
    return out


def _national(status: int, code: str, reason: str) -> JSONResponse:
    return JSONResponse(NationalResponse.failure(mask_text(reason), code=code).model_dump(
        mode="json"), status_code=status)


@router.post("/partners/core/serious-illness/settlements",
             openapi_extra={"parameters": PARTNER_PARAMETERS},
             summary="一站式结算: core reports a settlement or 冲销 (H8501); its 大病 segment "
                     "goes to the insurer")
async def core_settlement(request: Request, state: State, desk: Desk) -> JSONResponse:
    try:
        body = await read_body(request, state.deps.settings.max_body_bytes)
        await authenticate_partner(state, request, body, door="core serious-illness",
                                   allowed=("core",))
    except (BodyRefused, CallerRefused) as exc:
        return _national(exc.status, exc.code, f"{exc.field}: {exc.reason}")
    try:
        out = await desk.receive_event(body)
    except ValidationFailed as exc:
        return _national(422 if exc.field != "body" else 400, exc.public_code,
                         "; ".join(f"{f}: {r}" for f, r in exc.errors))
    except Refused as exc:
        return _national(exc.status, exc.code, f"{exc.field}: {exc.reason}")
    return JSONResponse(NationalResponse.success(out).model_dump(mode="json"))


class Payment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    setl_id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    paid_on: date


@router.post("/partners/insurer/payments", openapi_extra={"parameters": PARTNER_PARAMETERS},
             summary="The insurer paid a claim: the time limit from the 结算单 is checked")
async def payment(request: Request, state: State, desk: Desk) -> JSONResponse:
    try:
        body = await read_body(request, state.deps.settings.max_body_bytes)
        await authenticate_partner(state, request, body, door="insurer payments",
                                   allowed=(PARTNER,))
    except (BodyRefused, CallerRefused) as exc:
        return JSONResponse({"code": exc.code, "field": exc.field, "reason": exc.reason},
                            status_code=exc.status)
    try:
        p = Payment.model_validate_json(body)
    except ValidationError as exc:
        return JSONResponse({"code": "INVALID", "errors": _errors(exc)}, status_code=422)
    try:
        return JSONResponse(await desk.payment(p.setl_id, p.paid_on))
    except Refused as exc:
        return JSONResponse(exc.as_dict(), status_code=exc.status)


def _problem(exc: HubError) -> JSONResponse:
    if isinstance(exc, ValidationFailed) and exc.partner is None:
        return hub_problem(exc, 422)
    return hub_problem(exc, 503 if isinstance(exc, TransientError) else 502)


class FinancingRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    year: int = Field(ge=2000, le=2099)
    estimated: Decimal | None = Field(default=None, description="预计筹资总额, yuan (a "
                                      "string, fen-exact); the actual total when left out")
    first_year: bool = Field(default=False, description="the first contract year (60%/40%)")

    @field_validator("estimated", mode="before")
    @classmethod
    def _fen(cls, v: object) -> Decimal | None:
        return None if v is None else fen(v, "estimated")


@router.post("/admin/serious-illness/financing",
             summary="筹资: the year's paying residents × 110 元 and its transfers, to the insurer")
async def financing(body: FinancingRequest, principal: Desk_, desk: Desk) -> JSONResponse:
    try:
        return JSONResponse(await desk.financing(body.year, principal,
                                                 estimated=body.estimated,
                                                 first_year=body.first_year))
    except HubError as exc:
        return _problem(exc)


class BatchRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    kind: str = Field(description=", ".join(f"{k}: {v}" for k, v in BATCH_KINDS.items()))
    period: str = Field(description="claims: yyyyQn; the others: yyyy")


@router.post("/admin/serious-illness/batches",
             summary="A batch exchange with the insurer (赔付明细, 分析报告, 清算, 轧差)")
async def run_batch(body: BatchRequest, principal: Desk_, desk: Desk) -> JSONResponse:
    try:
        return JSONResponse(await desk.run_batch(body.kind, body.period, principal))
    except HubError as exc:
        return _problem(exc)


@router.get("/admin/serious-illness/batches", summary="The batches exchanged with the insurer")
async def batches(principal: Reader, desk: Desk) -> JSONResponse:
    rows: list[dict[str, Any]] = await desk.batches()
    return JSONResponse({"batches": [r | {"created_at": str(r["created_at"]),
                                          "updated_at": str(r["updated_at"])} for r in rows]})


@router.get("/admin/serious-illness/claims/overdue",
            summary="Claims past their time limit from the 结算单 to payment (masked)")
async def overdue(principal: Reader, desk: Desk, as_of: date | None = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                  offset: Annotated[int, Query(ge=0, le=2**31)] = 0) -> JSONResponse:
    day = as_of or desk.today()
    return JSONResponse({"as_of": day.isoformat(),
                         "claims": await desk.overdue(day, limit=limit, offset=offset)})


@router.post("/admin/serious-illness/clues", summary="A 疑点数据 clue for the insurer")
async def clue(request: Request, principal: CaseworkerRole, desk: Desk) -> JSONResponse:
    try:
        c = Clue.model_validate_json(await request.body())
    except ValidationError as exc:
        return JSONResponse({"code": "INVALID", "errors": _errors(exc)}, status_code=422)
    return JSONResponse(await desk.clue(c, principal))
