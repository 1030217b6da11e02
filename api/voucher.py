"""F13 doors: institutions (e-voucher), core (凭证库 upload, 医税平台), kiosks and WeChat.

    POST /voucher/decode                       接口一/二: verify a voucher, the person (medins)
    POST /voucher/settlements                  接口三/四/五: settle by voucher (medins)
    GET  /voucher/settlements/{code}/{serial}  its result (medins)
    POST /voucher/persons                      参保人员基本信息 -> 省级凭证库 (core)
    POST /voucher/medtax                       records -> 医税平台, 310/510/390 only (core)
    POST /kiosk/query/{name}                   工行一体机 queries (a kiosk device)
    POST /kiosk/business/{name}/{ref}          工行一体机 enroll / change / reprint
    GET  /kiosk/business/{ref}                 a business request's result (that device)
    POST /wechat/query/{name}                  微信查询平台 queries (a WeChat account)

Institutions and core sign as partners (``X-Partner-*``, ``partners.<name>.secret``); a
kiosk device or a WeChat account signs the same way with its id in ``X-Partner`` and its
key from ``voucher.kiosk_devices`` / ``voucher.wechat_accounts``, and is rate-limited
per id (429 with ``Retry-After``). Refusals name the field and the reason; answers are
masked. The work is ``services.voucher``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final, Literal, TypeVar

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.signing import verify_signed
from api.body import BodyRefused, read_body
from api.callers import PARTNER_PARAMETERS, CallerRefused, authenticate_partner, note
from api.deps import ApiState, State
from contracts.errors import TransientError
from contracts.masking import mask_text
from contracts.signing import PARTNER_HEADERS, SignatureRefused, request_target
from contracts.voucher import (
    KIOSK_BUSINESS,
    MEDINS,
    QUERIES,
    QueryRequest,
    SettlementRequest,
    kiosk_model,
    refusals,
    request_key,
)
from services.voucher import Answer, VoucherDesk, VoucherKit

__all__ = ["router"]

router = APIRouter(tags=["F13 电子凭证"])

Code = Annotated[str, Path(pattern=r"^[HP]\d{11}$")]
Serial = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{6,40}$")]
QueryName = Literal["person", "contributions", "balance", "settlements", "enrollment"]
BusinessName = Literal["enroll", "change", "reprint"]
Channel = Literal["kiosk", "wechat"]
_ = (QUERIES, KIOSK_BUSINESS)  # the names above are these tables' keys
MAX_BATCH: Final = 1000
M = TypeVar("M", bound=BaseModel)


class _Decode(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ec_qr: str = Field(min_length=1, max_length=4096)


class _Batch(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    records: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH)


def _kit(state: ApiState) -> VoucherKit:
    kit = state.deps.voucher
    if kit is None:
        raise RuntimeError("no F13 parts in this hub")
    return kit


def _desk(state: ApiState) -> VoucherDesk:
    return VoucherDesk(kit=_kit(state), publisher=state.deps.publisher)


def _answer(a: Answer) -> JSONResponse:
    return JSONResponse(json.loads(json.dumps(a.body, ensure_ascii=False, default=str)),
                        status_code=a.status, headers=a.headers or None)


def _no(exc: BodyRefused | CallerRefused) -> JSONResponse:
    return JSONResponse({"code": exc.code, "refused": [{"field": exc.field,
                                                        "reason": exc.reason}]},
                        status_code=exc.status)


async def _partner(request: Request, state: ApiState, partner: str,
                   door: str) -> bytes | JSONResponse:
    """The body of a request ``partner`` signed, or the refusal to answer."""
    try:
        body = await read_body(request, state.deps.settings.max_body_bytes)
        cfg = state.deps.settings.partners.get(partner)
        if cfg is None or not cfg.secret.get_secret_value():
            raise note(door, request, CallerRefused(
                401, "UNAUTHORIZED", "partner", f"this hub takes no calls from {partner} "
                f"(partners.{partner} with a secret)"))
        await authenticate_partner(state, request, body, door=door, allowed=(partner,))
    except (BodyRefused, CallerRefused) as exc:
        return _no(exc)
    return body


async def _caller(request: Request, state: ApiState, channel: Channel
                  ) -> tuple[str, bytes] | JSONResponse:
    """A kiosk device or WeChat account that signed this request, and the body."""
    door = f"{channel} queries"
    cfg = state.deps.settings.voucher
    keys = cfg.kiosk_devices if channel == "kiosk" else cfg.wechat_accounts
    claimed = request.headers.get(PARTNER_HEADERS.caller or "", "").strip()
    try:
        body = await read_body(request, 64 * 1024)
        if claimed not in keys:
            raise note(door, request, CallerRefused(
                401, "UNAUTHORIZED", PARTNER_HEADERS.caller or "",
                f"not a known {'kiosk device' if channel == 'kiosk' else 'WeChat account'}"),
                f"unknown:{claimed[:40]!r}")
        if state.deps.nonces is None:
            raise note(door, request, CallerRefused(503, "UNAVAILABLE", PARTNER_HEADERS.nonce,
                                                    "this hub has no nonce store"), claimed)
        try:
            await verify_signed(claimed, keys[claimed].get_secret_value(),
                                method=request.method, target=request_target(request.scope),
                                headers=request.headers, body=body, nonces=state.deps.nonces,
                                names=PARTNER_HEADERS,
                                now=state.clock() if state.clock else None,
                                scope=f"{channel}:{claimed}")
        except SignatureRefused as exc:
            raise note(door, request, CallerRefused(401, exc.code, exc.field,
                                                    exc.errors[0][1]), claimed) from None
        except TransientError as exc:
            raise note(door, request, CallerRefused(503, "UNAVAILABLE", PARTNER_HEADERS.nonce,
                                                    exc.reason), claimed) from None
    except (BodyRefused, CallerRefused) as exc:
        return _no(exc)
    return claimed, body


def _parse(model: type[M], body: bytes) -> M | JSONResponse:
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        return JSONResponse({"accepted": False, "code": "INVALID", "refused": [
            {"field": f, "reason": mask_text(r)} for f, r in refusals(exc)]}, status_code=422)


# ---------------------------------------------------------------- institutions

@router.post("/voucher/decode", openapi_extra={"parameters": PARTNER_PARAMETERS},
             summary="接口一/二: verify an e-voucher QR code and get the person's info")
async def decode(request: Request, state: State) -> JSONResponse:
    body = await _partner(request, state, MEDINS, "voucher")
    if isinstance(body, JSONResponse):
        return body
    req = _parse(_Decode, body)
    if isinstance(req, JSONResponse):
        return req
    full = MEDINS in state.deps.settings.voucher.full_view_partners
    return _answer(await _desk(state).decode(req.ec_qr, full_view=full))


@router.post("/voucher/settlements", openapi_extra={"parameters": PARTNER_PARAMETERS},
             summary="接口三/四/五: outpatient, discharge or pharmacy settlement by voucher")
async def settle(request: Request, state: State) -> JSONResponse:
    body = await _partner(request, state, MEDINS, "voucher")
    if isinstance(body, JSONResponse):
        return body
    req = _parse(SettlementRequest, body)
    if isinstance(req, JSONResponse):
        return req
    return _answer(await _desk(state).settle(req))


@router.get("/voucher/settlements/{fixmedins_code}/{setl_req_no}",
            openapi_extra={"parameters": PARTNER_PARAMETERS}, summary="A settlement's result")
async def settlement(fixmedins_code: Code, setl_req_no: Serial, request: Request,
                     state: State) -> JSONResponse:
    body = await _partner(request, state, MEDINS, "voucher")
    if isinstance(body, JSONResponse):
        return body
    return _answer(await _desk(state).request(request_key(fixmedins_code, setl_req_no)))


# ---------------------------------------------------------------- core's pushes

async def _batch(request: Request, state: ApiState) -> list[dict[str, Any]] | JSONResponse:
    body = await _partner(request, state, "core", "voucher core")
    if isinstance(body, JSONResponse):
        return body
    batch = _parse(_Batch, body)
    return batch if isinstance(batch, JSONResponse) else batch.records


@router.post("/voucher/persons", openapi_extra={"parameters": PARTNER_PARAMETERS},
             summary="参保人员基本信息 to the 省级凭证库 in real time (seed 79)")
async def persons(request: Request, state: State) -> JSONResponse:
    records = await _batch(request, state)
    if isinstance(records, JSONResponse):
        return records
    return _answer(await _desk(state).upload(records))


@router.post("/voucher/medtax", openapi_extra={"parameters": PARTNER_PARAMETERS},
             summary="医税平台: 职工医疗 (310), 职工生育 (510), 居民医疗 (390) only (seed 37)")
async def medtax(request: Request, state: State) -> JSONResponse:
    records = await _batch(request, state)
    if isinstance(records, JSONResponse):
        return records
    return _answer(await _desk(state).medtax(records))


# ---------------------------------------------------------------- kiosks and WeChat

async def _query(channel: Channel, name: QueryName, request: Request,
                 state: ApiState) -> JSONResponse:
    who = await _caller(request, state, channel)
    if isinstance(who, JSONResponse):
        return who
    desk = _desk(state)
    limited = await desk.limited(channel, who[0])
    if limited is not None:
        return _answer(limited)
    q = _parse(QueryRequest, who[1])
    if isinstance(q, JSONResponse):
        return q
    return _answer(await desk.query(name, q.certno, q.year))


@router.post("/kiosk/query/{name}", openapi_extra={"parameters": PARTNER_PARAMETERS},
             summary="工行一体机: 个人信息, 缴费记录, 账户余额, 结算记录, 参保状态")
async def kiosk_query(name: QueryName, request: Request, state: State) -> JSONResponse:
    return await _query("kiosk", name, request, state)


@router.post("/wechat/query/{name}", openapi_extra={"parameters": PARTNER_PARAMETERS},
             summary="微信查询平台: 个人信息, 缴费记录, 账户余额, 结算记录, 参保状态")
async def wechat_query(name: QueryName, request: Request, state: State) -> JSONResponse:
    return await _query("wechat", name, request, state)


@router.post("/kiosk/business/{name}/{ref}", openapi_extra={"parameters": PARTNER_PARAMETERS},
             summary="工行一体机: 参保登记 (enroll), 信息变更 (change), 参保凭证补打 (reprint)")
async def kiosk_business(name: BusinessName, ref: Serial, request: Request,
                         state: State) -> JSONResponse:
    who = await _caller(request, state, "kiosk")
    if isinstance(who, JSONResponse):
        return who
    desk = _desk(state)
    limited = await desk.limited("kiosk", who[0])
    if limited is not None:
        return _answer(limited)
    req = _parse(kiosk_model(name), who[1])
    if isinstance(req, JSONResponse):
        return req
    return _answer(await desk.business(name, who[0], ref, req))


@router.get("/kiosk/business/{ref}", openapi_extra={"parameters": PARTNER_PARAMETERS},
            summary="A kiosk business request's result (the device that made it)")
async def kiosk_result(ref: Serial, request: Request, state: State) -> JSONResponse:
    who = await _caller(request, state, "kiosk")
    if isinstance(who, JSONResponse):
        return who
    return _answer(await _desk(state).request(request_key(who[0], ref)))
