"""F9 转移接续: the caseworkers' desk for transfers (the platform is pulled, not a caller).

    POST /admin/transfers                          a window (offline) application (caseworker)
    POST /admin/transfers/pull                     pull the national platform now (caseworker
                                                   or operations; the hub also pulls on its
                                                   schedule)
    GET  /admin/transfers/{application_no}         one transfer and its history, masked
    GET  /admin/transfers/{application_no}/certificate
                                                   the 参保凭证 PDF of an offline transfer
                                                   (caseworker; audited)
    POST /admin/transfers/{application_no}/resend  补发 of a decided transfer's current
                                                   status to the platform and/or core
                                                   (caseworker; audited as transfer.resend)

A refused application or a bad or unknown application number is answered with the field
and the reason (422 / 404); nothing is stored for a refused entry. The work is
``services.transfer``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal
from api.deps import Caseworker, Reader, State, require
from api.problems import answer
from contracts.transfer import check_application_no
from services.resender import ANONYMOUS
from services.transfer import ResendTarget, TransferDesk
from storage.transfer import TransferStore

__all__ = ["router"]

router = APIRouter(tags=["F9 转移接续"])

Puller = Annotated[Principal, Depends(require("caseworker", "operations"))]


async def _desk(state: State) -> TransferDesk:
    store = state.deps.transfers
    if not isinstance(store, TransferStore):
        raise RuntimeError("no F9 store in this hub")
    return TransferDesk(store=store, publisher=state.deps.publisher,
                        settings=state.deps.settings.transfer,
                        platform=state.deps.transfer_platform, audit=state.audit)


Desk = Annotated[TransferDesk, Depends(_desk)]


def _bad_number(application_no: str) -> JSONResponse | None:
    reason = check_application_no(application_no)
    if reason is None:
        return None
    return answer(422, {"accepted": False, "refused": [
        {"field": "application_no", "reason": reason}]})


def _unknown(application_no: str) -> JSONResponse:
    return answer(404, {"accepted": False, "refused": [
        {"field": "application_no", "reason": f"no transfer {application_no}"}]})


@router.post("/admin/transfers", summary="A window (offline) transfer application")
async def enter(principal: Caseworker, desk: Desk,
                body: Annotated[dict[str, Any], Body()]) -> JSONResponse:
    status, got = await desk.enter(body, principal or ANONYMOUS)
    return answer(status, got)


@router.post("/admin/transfers/pull", summary="Pull the national platform's applications now")
async def pull(principal: Puller, desk: Desk) -> JSONResponse:
    result = await desk.pull(principal)
    failed = bool(result.error) and not result.items
    return answer(502 if failed else 200, result.as_dict())


@router.get("/admin/transfers/{application_no}", summary="One transfer by application number")
async def get_transfer(application_no: str, principal: Reader, desk: Desk) -> JSONResponse:
    if (bad := _bad_number(application_no)) is not None:
        return bad
    got = await desk.get(application_no)
    return _unknown(application_no) if got is None else JSONResponse(got)


@router.get("/admin/transfers/{application_no}/certificate",
            summary="The 参保凭证 PDF of an offline (未联网地区) transfer")
async def certificate(application_no: str, principal: Caseworker, desk: Desk) -> Response:
    if (bad := _bad_number(application_no)) is not None:
        return bad
    got = await desk.certificate(application_no, principal or ANONYMOUS)
    if got is None:
        return _unknown(application_no) if await desk.get(application_no) is None else \
            answer(404, {"accepted": False, "refused": [
                {"field": "application_no",
                 "reason": f"transfer {application_no} has no 参保凭证 (not offline, or "
                           "not issued yet)"}]})
    pdf, digest = got
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{application_no}.pdf"',
        "X-Content-SHA256": digest})


class Resend(BaseModel):
    """补发 of a transfer's current status: to whom (default: wherever it goes), why, and
    the caller's id of this 补发 (its retry sends the same id: the same delivery)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    reason: str = Field(min_length=1, max_length=200)
    resend_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{8,64}$",
                                  description="the caller's id of this 补发: the same id "
                                  "again is a retry of it, not a new delivery")
    targets: list[ResendTarget] | None = Field(default=None, min_length=1, max_length=2)


@router.post("/admin/transfers/{application_no}/resend",
             summary="补发 of a transfer's current status to the platform and/or core")
async def resend(application_no: str, body: Resend, principal: Caseworker,
                 desk: Desk) -> JSONResponse:
    if (bad := _bad_number(application_no)) is not None:
        return bad
    targets = tuple(dict.fromkeys(body.targets)) if body.targets else None
    status, got = await desk.resend(application_no, reason=body.reason,
                                    actor=principal or ANONYMOUS, targets=targets,
                                    resend_id=body.resend_id)
    return answer(status, got)
