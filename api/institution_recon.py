"""F14 对账 and 单边帐: the institutions' national door and the bureau's desk.

    POST /partners/institutions/national        the national envelope: 3201, 9101, 3202,
                                                9102 from an institution (signed as
                                                ``inst_<fixmedins_code>``), H3205 from the
                                                移动支付 platform (signed as ``mobile_payment``)
    POST /admin/reconciliation/runs             reconcile institutions on a day now: the hub
                                                asks each HIS (caseworker or operations)
    GET  /admin/reconciliation/runs/{run_id}    one run: totals, differences, diagnosis
    GET  /admin/reconciliation/cases            单边帐 cases (``?status=held``...)
    POST /admin/reconciliation/cases/{case_id}  a caseworker resolves one: reverse (冲正),
                                                complete (补记) or, for an amount_differs
                                                case, correct (更正 to the core's amounts),
                                                with a reason (audited)

The door answers in the national envelope: ``infcode`` 0 with ``output``, or -1 with
``err_msg`` and ``output.errors`` ([{field, reason}]) at 401/403/422. Answers are masked.
The work is ``services.institution_recon``.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.auth import Principal
from api.body import BodyRefused, read_body
from api.callers import PARTNER_PARAMETERS, CallerRefused, authenticate_partner, note
from api.deps import Caseworker, Reader, State, require
from api.problems import answer
from contracts.errors import field_errors
from contracts.institution_recon import INFNO_NOTICE, INSTITUTION_PREFIX, MOBILE
from contracts.masking import mask_text, mask_value
from contracts.national import NationalRequest, NationalResponse
from routes.institution_recon import hold_minutes_of
from services.institution_recon import Answer, ReconDesk, institution_codes
from services.resender import ANONYMOUS
from storage.institution_recon import CASE_STATUSES, InstitutionReconStore

__all__ = ["router"]

router = APIRouter(tags=["F14 对账"])

Runner = Annotated[Principal, Depends(require("caseworker", "operations"))]
CaseId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
_DOOR = "institution national"


async def _desk(state: State) -> ReconDesk:
    store = state.deps.institution_recon
    if not isinstance(store, InstitutionReconStore):
        raise RuntimeError("no F14 store in this hub")
    return ReconDesk(store=store, institutions=state.deps.institutions,
                     core_ledger=state.deps.core_ledger, publisher=state.deps.publisher,
                     audit=state.audit, hold_minutes=hold_minutes_of(state.deps))


Desk = Annotated[ReconDesk, Depends(_desk)]


_KEEP = frozenset({"id", "run_id", "case_id", "file_qury_no", "file", "filename", "setl_id",
                   "mdtrt_id", "inf_refmsgid", "respond_time", "refmsg_time"})
"""Identifiers and file content: hex or digit runs that ``mask_value`` could take for an ID
number (and so break the id a caller needs back); nothing personal."""


def _masked(value: Any, key: str = "") -> Any:
    """``mask_value`` of an answer, identifiers (``_KEEP``) left as they are."""
    if isinstance(value, dict):
        return {k: v if k in _KEEP else _masked(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, key) for v in value]
    return mask_value(value, key)


def _national(status: int, response: NationalResponse) -> JSONResponse:
    return JSONResponse(_masked(response.model_dump(mode="json", exclude_none=True)),
                        status_code=status)


def _failure(status: int, code: str, errors: list[tuple[str, str]] | tuple[tuple[str, str], ...]
             ) -> JSONResponse:
    listed = [{"field": f, "reason": mask_text(r)} for f, r in errors]
    text = "; ".join(f"{e['field']}: {e['reason']}" for e in listed)[:500]
    r = NationalResponse.failure(text, code=code)
    return _national(status, r.model_copy(update={"output": {"err_code": code,
                                                             "errors": listed}}))


def _of(got: Answer) -> JSONResponse:
    if got.ok:
        return _national(200, NationalResponse.success(got.output))
    return _failure(got.status, got.code, got.errors)


@router.post("/partners/institutions/national", openapi_extra={
    "parameters": PARTNER_PARAMETERS},
    summary="An institution's 3201/3202/9101/9102, or a 移动支付 notice (H3205)")
async def national(request: Request, state: State, desk: Desk) -> JSONResponse:
    partners = state.deps.settings.partners
    allowed = tuple(p for p in partners if p.startswith(INSTITUTION_PREFIX)
                    and partners[p].secret.get_secret_value())
    allowed += (MOBILE,) if MOBILE in partners else ()
    try:
        body = await read_body(request, state.deps.settings.max_body_bytes * 64)
        if not allowed:
            raise note(_DOOR, request, CallerRefused(401, "UNAUTHORIZED", "X-Partner",
                                                     "this hub reconciles no institution"))
        caller = await authenticate_partner(state, request, body, door=_DOOR, allowed=allowed)
    except (BodyRefused, CallerRefused) as exc:
        return _failure(exc.status, exc.code, [(exc.field, exc.reason)])
    try:
        req = NationalRequest.model_validate(json.loads(body))
    except ValueError as exc:
        errors = field_errors(exc) if isinstance(exc, ValidationError) else [
            ("body", f"not JSON: {exc}")]
        return _failure(422, "VALIDATION", errors)
    if caller == MOBILE:
        if req.infno != INFNO_NOTICE:
            return _failure(403, "FORBIDDEN", [("infno", f"{MOBILE} sends {INFNO_NOTICE} "
                                                         "notices only")])
        return _of(await desk.notice(req.input))
    if req.infno == INFNO_NOTICE:
        return _failure(403, "FORBIDDEN", [("infno", f"{INFNO_NOTICE} is {MOBILE}'s")])
    return _of(await desk.from_institution(caller.removeprefix(INSTITUTION_PREFIX).upper(),
                                           req))


class RunRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stmt_date: date
    fixmedins_codes: list[Annotated[str, Field(pattern=r"^[HPY][0-9]{11}$")]] | None = Field(
        default=None, min_length=1, max_length=500,
        description="default: every institution the hub has (partners.inst_<code>)")


@router.post("/admin/reconciliation/runs", summary="Reconcile institutions on a day now")
async def run_day(body: RunRequest, principal: Runner, state: State,
                  desk: Desk) -> JSONResponse:
    known = institution_codes(list(state.deps.settings.partners))
    codes = body.fixmedins_codes or known
    if unknown := [c for c in codes if c not in known]:
        return answer(422, {"refused": [{"field": "fixmedins_codes",
                                         "reason": f"not institutions of this hub: "
                                                   f"{', '.join(unknown)}"}]})
    runs = await desk.run_day(body.stmt_date, codes)
    return JSONResponse(_masked({"stmt_date": body.stmt_date.isoformat(), "runs": runs}))


@router.get("/admin/reconciliation/runs/{run_id}", summary="One reconciliation run")
async def get_run(run_id: CaseId, principal: Reader, desk: Desk) -> JSONResponse:
    got = await desk.run(run_id)
    if got is None:
        return answer(404, {"refused": [{"field": "run_id", "reason": f"no run {run_id}"}]})
    return JSONResponse(_masked(got))


@router.get("/admin/reconciliation/cases", summary="单边帐 cases")
async def cases(principal: Reader, desk: Desk, status: str | None = None,
                fixmedins_code: Annotated[str | None, Query(pattern=r"^[HPY][0-9]{11}$")]
                = None,
                stmt_date: date | None = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                offset: Annotated[int, Query(ge=0, le=2**31)] = 0) -> JSONResponse:
    if status is not None and status not in CASE_STATUSES:
        return answer(422, {"refused": [{"field": "status", "reason": f"one of "
                                         f"{', '.join(CASE_STATUSES)}"}]})
    got = await desk.cases(status=status, code=fixmedins_code,
                           stmt_date=stmt_date.isoformat() if stmt_date else None,
                           limit=limit, offset=offset)
    return JSONResponse(_masked({"cases": got}))


class Resolve(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    action: Literal["reverse", "complete", "correct"]
    reason: str = Field(min_length=1, max_length=200)


@router.post("/admin/reconciliation/cases/{case_id}",
             summary="A caseworker resolves a 单边帐: reverse (冲正) or complete (补记)")
async def resolve(case_id: CaseId, body: Resolve, principal: Caseworker,
                  desk: Desk) -> JSONResponse:
    who = principal or ANONYMOUS
    status, got = await desk.resolve(case_id, body.action, body.reason, who.user, who.role)
    return answer(status, _masked(got))


