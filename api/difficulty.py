"""F7 困难人员数据交互平台: the departments' door and the caseworkers' desk.

    POST /partners/departments/{dept}/lists      a department's system pushes a month's
                                                 list (signed as ``difficulty_<dept>``)
    POST /partners/assistance/queries/person     人员认定 for the 医疗救助平台 (signed as
                                                 ``assistance``; 1497)
    POST /admin/difficulty/sunshine/runs         today's push of the 救助人员 table to
                                                 阳光惠民 (also scheduled; once a day)
    POST /admin/difficulty/files/{dept}          a list as a CSV/XLSX file (caseworker;
                                                 ``?month=yyyy-MM&filename=x.csv``)
    POST /admin/difficulty/records               a caseworker's single record
    GET  /admin/difficulty/reviews?step=first    records waiting for 初审 (second: 复核)
    POST /admin/difficulty/reviews               初审/复核 of records (caseworker;
                                                 复核 by another account than 初审)
    GET  /admin/difficulty/records/{id}          one record
    GET  /admin/difficulty/cases                 the caseworker's choice queue (1487)
    POST /admin/difficulty/cases/{id}            choose the identity carrying the treatment
    GET  /admin/difficulty/sync-log              同步日志 (``?status=failed``: the alerts)
    POST /admin/difficulty/resend                补发 of the 救助待遇标识同步情况 of a
                                                 department's month, or one person's
                                                 (caseworker, audited)
    GET  /admin/difficulty/lists/{id}/status-file  the status file of a list (1532):
                                                 the department's columns + 同步情况, 原因
                                                 (caseworker, audited; ``?partial=true``
                                                 before every row is settled)

A list's bad rows are answered with row, field and reason (the good rows are kept);
a list refused whole (unknown department, bad month, unreadable file) is 422. Every
answer is masked. The work is ``services.difficulty``.
"""

from __future__ import annotations

import json
from pathlib import Path as PathLib
from typing import IO, Annotated, Any, Final, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.assistance import platform_body
from api.batches import receive_upload
from api.body import BodyRefused, read_body
from api.callers import PARTNER_PARAMETERS, CallerRefused, authenticate_partner, note
from api.deps import Caseworker, Reader, State
from api.problems import answer, field_error, problem
from contracts.difficulty import DEPARTMENTS, DepartmentList, partner_of
from contracts.ids import validate_id_number
from contracts.masking import mask_text
from services.difficulty import DifficultyDesk
from services.difficulty_files import DirShelf, StatusFiles
from services.resender import ANONYMOUS
from storage.difficulty import DifficultyStore

__all__ = ["MAX_FILE_BYTES", "router"]

router = APIRouter(tags=["F7 困难人员"])

MAX_FILE_BYTES: Final = 20 * 1024 * 1024
Department = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[a-z_]+$")]
Id32 = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[0-9a-f]+$")]
Month = Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]


async def _desk(state: State) -> DifficultyDesk:
    store = state.deps.difficulty
    if not isinstance(store, DifficultyStore):
        raise RuntimeError("no F7 store in this hub")
    return DifficultyDesk(store=store, publisher=state.deps.publisher, audit=state.audit,
                          partners=state.deps.difficulty_partners,
                          core=state.deps.assistance_core)


Desk = Annotated[DifficultyDesk, Depends(_desk)]


async def _files(state: State) -> StatusFiles:
    store = state.deps.difficulty
    if not isinstance(store, DifficultyStore):
        raise RuntimeError("no F7 store in this hub")
    cfg = state.deps.settings.difficulty_files
    return StatusFiles(store=store, shelf=DirShelf(PathLib(cfg.dir) / state.deps.settings
                                                   .namespace),
                       drops=cfg.drops, audit=state.audit)


Files = Annotated[StatusFiles, Depends(_files)]


def _answer(receipt: dict[str, Any]) -> JSONResponse:
    return JSONResponse(receipt, status_code=200 if receipt.get("accepted") else 422)


def _refused(status: int, code: str, field: str, reason: str) -> JSONResponse:
    return JSONResponse({"accepted": False, "code": code,
                         "refused": [{"row": 0, "field": field, "reason": reason}]},
                        status_code=status)


@router.post("/partners/departments/{dept}/lists", openapi_extra={
    "parameters": PARTNER_PARAMETERS},
    summary="A department's monthly 增加/减少 list (民政, 总工会, 退役军人事务局, 农业农村局)")
async def department_list(dept: Department, request: Request, state: State,
                          desk: Desk) -> JSONResponse:
    door = "department lists"
    try:
        body = await read_body(request, state.deps.settings.max_body_bytes * 8)
        partner = partner_of(dept)
        config = state.deps.settings.partners.get(partner)
        if dept not in DEPARTMENTS or config is None \
                or not config.secret.get_secret_value():
            raise note(door, request, CallerRefused(
                401, "UNAUTHORIZED", "dept", f"{dept} is not a department this hub takes "
                "lists from (partners.difficulty_<department> with a secret)"))
        await authenticate_partner(state, request, body, door=door, allowed=(partner,))
    except (BodyRefused, CallerRefused) as exc:
        return _refused(exc.status, exc.code, exc.field, exc.reason)
    try:
        lst = DepartmentList.model_validate_json(body)
    except ValidationError as exc:
        return JSONResponse({"accepted": False, "code": "INVALID", "refused": [
            {"row": 0, "field": ".".join(str(p) for p in e["loc"]) or "body",
             "reason": mask_text(str(e["msg"]))} for e in exc.errors()]}, status_code=422)
    return _answer(await desk.receive(dept, lst.month, lst.records, channel="api",
                                      list_ref=lst.list_id, actor=partner))


@router.post("/admin/difficulty/files/{dept}",
             summary="A department's list as a CSV or XLSX file (UTF-8 or GBK)")
async def upload_list(dept: Department, month: Month, filename: str, request: Request,
                      principal: Caseworker, desk: Desk, files: Files) -> JSONResponse:
    who = getattr(principal, "user", ANONYMOUS.user)

    async def start(spool: IO[bytes]) -> JSONResponse:
        raw = spool.read()
        receipt = await desk.import_file(dept, month, filename, raw, who)
        if receipt.get("accepted"):  # kept for the status file back (1532)
            await files.keep(receipt, filename=filename, raw=raw)
            receipt["status_file"] = f"/admin/difficulty/lists/{receipt['list_id']}/status-file"
        return answer(200 if receipt.get("accepted") else 422, receipt)

    return await receive_upload(request, filename, MAX_FILE_BYTES, start)


class Entry(BaseModel):
    """A caseworker's single record (登记, 维护 as a new 增加, 注销 as a 减少; 1804)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    department: str = Field(min_length=1, max_length=40, description="a department, or bureau "
                            "for the bureau's own registrations (拆迁人员, 孤儿(新), ...)")
    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    record: dict[str, Any]


@router.post("/admin/difficulty/records", summary="A caseworker's single record")
async def enter_record(body: Entry, principal: Caseworker, desk: Desk) -> JSONResponse:
    who = getattr(principal, "user", ANONYMOUS.user)
    receipt = await desk.enter(body.department, body.month, body.record, who)
    return answer(200 if receipt.get("accepted") else 422, receipt)


@router.get("/admin/difficulty/reviews", summary="Records waiting for 初审 (first) or 复核")
async def pending(principal: Reader, desk: Desk, step: Literal["first", "second"] = "first",
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                  offset: Annotated[int, Query(ge=0, le=2**31)] = 0) -> JSONResponse:
    return JSONResponse(await desk.pending(step, limit=limit, offset=offset))


class Review(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    record_ids: list[Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]] = Field(
        min_length=1, max_length=1000)
    decision: Literal["approve", "reject"]
    reason: str = Field(default="", max_length=200)


@router.post("/admin/difficulty/reviews",
             summary="初审 or 复核 of records (复核 by another caseworker than 初审)")
async def review(body: Review, principal: Caseworker, desk: Desk) -> JSONResponse:
    if body.decision == "reject" and not body.reason:
        return problem(422, "reason: a rejection needs a reason", code="VALIDATION",
                       errors=[field_error("reason", "a rejection needs a reason")])
    results = await desk.review(body.record_ids, approve=body.decision == "approve",
                                reason=body.reason, actor=principal or ANONYMOUS)
    return JSONResponse({"results": [r.as_dict() for r in results]})


@router.get("/admin/difficulty/records/{record_id}", summary="One F7 record")
async def get_record(record_id: Id32, principal: Reader, desk: Desk) -> JSONResponse:
    rec = await desk.record(record_id)
    if rec is None:
        return problem(404, f"no record {record_id}")
    return JSONResponse(rec)


@router.get("/admin/difficulty/cases",
            summary="Persons whose treatment identity ended while others remain (1487)")
async def cases(principal: Reader, desk: Desk,
                status: Literal["open", "closed", "all"] = "open") -> JSONResponse:
    return JSONResponse({"cases": await desk.cases(status=None if status == "all" else status)})


class Choice(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    identity: str = Field(pattern=r"^\d{2}$")


_CHOICE_STATUS: Final = {"ok": 200, "not_found": 404, "conflict": 409, "invalid": 422}


@router.post("/admin/difficulty/cases/{case_id}",
             summary="Choose the identity that carries the person's treatment")
async def choose(case_id: Id32, body: Choice, principal: Caseworker,
                 desk: Desk) -> JSONResponse:
    outcome, case = await desk.choose(case_id, body.identity, principal or ANONYMOUS)
    return answer(_CHOICE_STATUS[outcome], {"outcome": outcome, "case": case})


@router.get("/admin/difficulty/sync-log", summary="同步日志; status=failed lists the alerts")
async def sync_log(principal: Reader, desk: Desk,
                   status: Literal["ok", "failed", "all"] = "all",
                   limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> JSONResponse:
    rows = await desk.sync_log(status=None if status == "all" else status, limit=limit)
    return JSONResponse(json.loads(json.dumps({"entries": rows}, default=str)))


class Resend(BaseModel):
    """补发 to a department: its month's statuses, or one person's (``id_number``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    dept: str = Field(min_length=1, max_length=40)
    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    id_number: str | None = Field(default=None, pattern=r"^\d{17}[\dX]$")
    reason: str = Field(min_length=1, max_length=200)
    resend_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{8,64}$",
                                  description="the caller's id of this 补发: the same id "
                                  "again is a retry of it, not a new delivery")


@router.post("/admin/difficulty/resend",
             summary="补发 of the 救助待遇标识同步情况 to a department (a month, or one person)")
async def resend(body: Resend, principal: Caseworker, desk: Desk) -> JSONResponse:
    if body.dept not in DEPARTMENTS:
        why = f"{body.dept} is not a department (" + ", ".join(DEPARTMENTS) + ")"
        return problem(422, f"dept: {why}", code="VALIDATION", errors=[field_error("dept", why)])
    got = await desk.resend(body.dept, body.month, id_number=body.id_number,
                            reason=body.reason, actor=principal or ANONYMOUS,
                            resend_id=body.resend_id)
    return answer(200 if got["found"] else 404, got)


class PersonQuery(BaseModel):
    """人员认定 (1497): the platform asks whether a person is a recognised 困难人员."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    id_number: str = Field(min_length=18, max_length=18)


@router.post("/partners/assistance/queries/person", openapi_extra={
    "parameters": PARTNER_PARAMETERS},
    summary="人员认定 for the 医疗救助平台: recognised 困难人员? which identities, since when")
async def person_query(request: Request, state: State, desk: Desk) -> JSONResponse:
    try:
        body = await platform_body(request, state)
    except (BodyRefused, CallerRefused) as exc:
        return JSONResponse({"code": exc.code, "field": exc.field, "reason": exc.reason},
                            status_code=exc.status)
    try:
        query = PersonQuery.model_validate_json(body)
    except ValidationError as exc:
        return JSONResponse({"code": "INVALID", "errors": [
            {"field": ".".join(str(p) for p in e["loc"]) or "body",
             "reason": mask_text(str(e["msg"]))} for e in exc.errors()]}, status_code=422)
    id_number = query.id_number.upper()
    reason = validate_id_number(id_number)
    if reason:
        return JSONResponse({"code": "INVALID", "errors": [
            {"field": "id_number", "reason": f"not a valid ID number: {reason}"}]},
            status_code=422)
    return JSONResponse(await desk.person(id_number))


@router.post("/admin/difficulty/sunshine/runs",
             summary="Push today's 救助人员 table to 阳光惠民 (what today has not pushed yet)")
async def sunshine_run(principal: Caseworker, desk: Desk) -> JSONResponse:
    got = await desk.run_sunshine(principal or ANONYMOUS)
    return answer(200 if got["complete"] else 502, got)


@router.get("/admin/difficulty/lists/{list_id}/status-file",
            summary="The status file of a list that came in as a file: its columns + "
                    "同步情况 and 原因 (1532)")
async def status_file(list_id: Id32, principal: Caseworker, files: Files,
                      partial: bool = False) -> Response:
    """The department's file back with each row's 同步情况 (已同步/未通过) and 原因, as
    things stand now, encoded like the file that came in. 409 while a row is still in
    review or waiting for core, unless ``partial`` (those rows say 处理中). Audited; the
    personal data in the file is the department's own and is not masked."""
    got = await files.download(list_id, principal or ANONYMOUS)
    if got is None:
        return problem(404, f"no list {list_id}")
    if not got.settled and not partial:
        return answer(409, {"code": "NOT_SETTLED", "detail": "not every row is settled yet "
                            "(初审, 复核 or core); ?partial=true for the file as it stands",
                            **got.counts})
    ascii_name = f"status_{list_id[:8]}.{got.format}"
    return Response(got.data, media_type=got.media_type, headers={
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; "
                               f"filename*=UTF-8''{quote(got.name)}",
        "X-Status-Counts": ",".join(f"{k}={v}" for k, v in got.counts.items()),
        "X-Status-Rebuilt": "1" if got.rebuilt else "0"})
