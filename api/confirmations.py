"""Admin API for identity confirmations (灵活就业终止 held by tax with TX402).

    GET  /admin/confirmations             cases (``status`` open by default, or
                                          confirmed, closed, cancelled, all) and the
                                          count per status
    GET  /admin/confirmations/{case_id}   one case
    POST /admin/confirmations/{case_id}   ``{"action": "confirm" | "cancel", "reason": ...,
                                          "phone": optional}``: confirm again (202) or
                                          cancel (200)

Reading is open to every role; acting needs ``caseworker``. Personal data is masked
in every answer (``storage.confirmations.masked_case``). The work is
``services.confirmations``.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse

from api.deps import Caseworker, Reader, State
from api.problems import problem
from services.confirmations import CaseAction, ConfirmationDesk
from services.resender import ANONYMOUS
from storage.confirmations import ConfirmationStore

__all__ = ["router"]

router = APIRouter(tags=["admin: identity confirmations"])

_STATUS: Final = {"not_found": 404, "conflict": 409, "invalid": 422}
CaseId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[0-9a-f]+$")]


async def _desk(state: State) -> ConfirmationDesk:
    store = state.deps.confirmations
    if not isinstance(store, ConfirmationStore):
        raise RuntimeError("no identity-confirmation store in this hub")
    return ConfirmationDesk(store=store, publisher=state.deps.publisher, audit=state.audit)


Desk = Annotated[ConfirmationDesk, Depends(_desk)]


@router.get("/admin/confirmations", summary="Identity-confirmation cases and counts per status")
async def list_cases(principal: Reader, desk: Desk,
                     status: Literal["open", "confirmed", "closed", "cancelled", "all"] = "open",
                     limit: Annotated[int, Query(ge=1, le=500)] = 100,
                     offset: Annotated[int, Query(ge=0, le=2**31)] = 0) -> JSONResponse:
    return JSONResponse(await desk.list(status=None if status == "all" else status,
                                        limit=limit, offset=offset))


@router.get("/admin/confirmations/{case_id}", summary="One identity-confirmation case")
async def get_case(case_id: CaseId, principal: Reader, desk: Desk) -> JSONResponse:
    case = await desk.get(case_id)
    if case is None:
        return problem(404, f"no identity case {case_id}")
    return JSONResponse(case)


@router.post("/admin/confirmations/{case_id}",
             summary="Confirm an open case again, or cancel it, with a reason")
async def act_on_case(case_id: CaseId, body: CaseAction, principal: Caseworker,
                      desk: Desk) -> JSONResponse:
    result = await desk.act(case_id, body, principal or ANONYMOUS)
    if result.outcome != "ok":
        return problem(_STATUS[result.outcome], result.detail, code=result.outcome.upper(),
                       case=result.case)
    return JSONResponse({"case": result.case, "detail": result.detail, "serial": result.serial},
                        status_code=202 if body.action == "confirm" else 200)
