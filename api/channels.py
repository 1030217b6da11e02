"""Citizen-channel ingress (flow F1) over HTTP: applications in, their status out.

    POST /channels/{channel}/applications                   submit; 202 with the hub's id
    GET  /channels/{channel}/applications/{application_id}  where it stands

A submission is checked in the order that spends the least on a stranger:
the channel exists (404), the body is within ``max_body_bytes`` (413, checked
while reading, before any parsing), it is ``application/json`` (415), it is
the channel's own (401: signature, timestamp window, unused nonce, or API
key), it is JSON (400), the envelope is right (422), the type is one of the
channel's own (403), the payload meets its contract (422 naming
``payload.<field>``). The first five are this module's (the request itself);
the rest, storing and publishing are ``services.applications``. Nothing refused is
stored or published. A refusal before the channel is authenticated (404, 413, 415,
401, or 503 when the nonce store cannot answer) is logged once a minute per caller
and reason (``api.callers.refusals``) and never journaled, so an anonymous flood
grows neither; a refusal of an authenticated channel is journaled. The signature
covers the request's method and target, so a signed submission or status request
cannot be pointed at another channel or application id. JSON nested deeper than
``api.body.MAX_JSON_DEPTH`` is refused 422 naming ``body``. Errors are RFC 7807 problem
documents (``api.problems``): ``code``, ``detail`` and ``errors`` ``[{loc, field, msg, type}]``.

An accepted application is answered 202; a repeat of a request already handed
on 200 with the first application's id and status; a ``request_id`` reused
for a different payload 409; a broker or store failure 503 (retry with the
same ``request_id``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from adapters.channels.auth import (
    HEADER_API_KEY,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    ChannelAuthError,
    verify_request,
)
from api.body import BodyRefused, parse_json, read_body
from api.callers import refusals, who_knocks
from api.deps import Intake, State
from api.problems import ProblemDocument, field_errors_of, problem
from config.settings import ChannelConfig
from contracts.channels import APPLICATION_TYPES, ApplicationRequest
from contracts.errors import TransientError, field_errors
from contracts.signing import request_target
from services.applications import Refused

__all__ = ["ApplicationAccepted", "ApplicationView", "ErrorBody", "router"]

class ApplicationAccepted(BaseModel):
    """The answer to a submission: the hub's id (quote it in GET) and the status."""

    application_id: str
    status: str
    duplicate: bool = Field(default=False,
                            description="true: this request_id was seen before; nothing new")


class ApplicationView(BaseModel):
    """Where an application stands; ``reason_field``/``reason`` say why it was rejected."""

    application_id: str
    channel: str
    type: str
    request_id: str
    status: str = Field(description="received, validated, registered, synced, completed "
                                    "or rejected")
    reason_field: str
    reason: str
    core_ref: str
    tax_serials: list[str]
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


class ErrorBody(ProblemDocument):
    """A refusal: an RFC 7807 problem (``api.problems``), with the application's id when one
    was kept (409, 503)."""

    application_id: str | None = None


_AUTH_PARAMETERS: Final = [
    {"name": HEADER_TIMESTAMP, "in": "header", "required": False, "schema": {"type": "string"},
     "description": "hmac-sha256 channels: unix seconds, within the channel's max_skew_s"},
    {"name": HEADER_NONCE, "in": "header", "required": False, "schema": {"type": "string"},
     "description": "hmac-sha256 channels: 16-64 of A-Z a-z 0-9 _ -, never reused"},
    {"name": HEADER_SIGNATURE, "in": "header", "required": False, "schema": {"type": "string"},
     "description": "hmac-sha256 channels: hex HMAC-SHA256 with the channel's secret over "
                    "HUB-HMAC-SHA256\\nMETHOD\\ntarget\\nchannel\\ntimestamp\\nnonce\\n"
                    "sha256(body) (contracts/signing.py)"},
    {"name": HEADER_API_KEY, "in": "header", "required": False, "schema": {"type": "string"},
     "description": "api-key channels: the channel's key"},
]
_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    code: {"model": ErrorBody, "description": text} for code, text in (
        (400, "not JSON"), (401, "not authenticated (the header is named)"),
        (403, "type not allowed for this channel"), (404, "unknown channel or application"),
        (409, "request_id reused for a different payload"), (413, "body too large"),
        (415, "not application/json"),
        (422, "invalid envelope or payload (fields named), or JSON nested too deeply"),
        (503, "broker or store unavailable: retry with the same request_id"))}
_TYPES_DOC: Final = "\n".join(
    f"- `{t.code}` {t.title} ({', '.join(t.channels)}) -> {t.operation}"
    for t in APPLICATION_TYPES.values())

router = APIRouter(tags=["channels (F1)"])


class _Anonymous(Refused):
    """A refusal before the channel is known to be who it claims: logged, not journaled."""


def _anonymous(exc: Refused) -> _Anonymous:
    return _Anonymous(exc.status, exc.code, exc.errors, app_id=exc.app_id)


async def _read_body(request: Request, cap: int) -> bytes:
    try:
        return await read_body(request, cap)
    except BodyRefused as exc:
        raise _Anonymous(exc.status, exc.code, [(exc.field, exc.reason)]) from None


def _check_json_type(request: Request) -> None:
    media, _, params = request.headers.get("content-type", "").partition(";")
    if media.strip().lower() != "application/json":
        raise _Anonymous(415, "UNSUPPORTED_MEDIA_TYPE",
                         [("Content-Type", f"must be application/json, got "
                                           f"{media.strip()[:60] or 'none'!r}")])
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and \
                value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise _Anonymous(415, "UNSUPPORTED_MEDIA_TYPE",
                             [("Content-Type", "charset must be utf-8")])


def _config(intake: Intake, channel: str) -> ChannelConfig:
    try:
        return intake.config(channel)
    except Refused as exc:  # an unknown channel: nobody to hold to account
        raise _anonymous(exc) from None


async def _authenticate(state: State, channel: str, cfg: ChannelConfig, request: Request,
                        body: bytes) -> None:
    nonces = state.deps.nonces
    if nonces is None:
        raise RuntimeError("no nonce store: this hub has no channel door")
    try:
        await verify_request(channel, cfg, request.headers, body, nonces,
                             method=request.method, target=request_target(request.scope),
                             now=state.clock() if state.clock else None)
    except ChannelAuthError as exc:
        raise _Anonymous(exc.status, exc.code, exc.errors) from None
    except TransientError as exc:
        raise _Anonymous(503, "UNAVAILABLE", [(HEADER_NONCE, exc.reason)]) from None


def _parse(body: bytes) -> ApplicationRequest:
    try:
        data = parse_json(body)
    except BodyRefused as exc:
        raise Refused(exc.status, exc.code, [(exc.field, exc.reason)]) from None
    try:
        return ApplicationRequest.model_validate(data)
    except ValidationError as exc:
        raise Refused(422, "VALIDATION", field_errors(exc, default="body")) from None


async def _refused(exc: Refused, intake: Intake, channel: str,
                   request: Request) -> JSONResponse:
    if isinstance(exc, _Anonymous):
        field, reason = exc.errors[0] if exc.errors else ("request", exc.code)
        refusals.refused("channels", f"{channel[:40]!r} {who_knocks(request)}", exc.status,
                         field, reason)
    else:
        await intake.refused(exc, channel, request.method)
    return problem(exc.status, "; ".join(f"{f}: {r}" for f, r in exc.errors) or exc.code,
                   code=exc.code, errors=field_errors_of(exc.errors), application_id=exc.app_id)


@router.post("/channels/{channel}/applications", status_code=202,
             summary="Submit an application (signed; a repeated request_id returns the first)",
             response_model=ApplicationAccepted,
             responses={200: {"model": ApplicationAccepted,
                              "description": "repeat of an earlier request_id"}, **_ERRORS},
             openapi_extra={
                 "parameters": _AUTH_PARAMETERS,
                 "requestBody": {"required": True, "content": {"application/json": {
                     "schema": ApplicationRequest.model_json_schema()}}},
                 "description": "Application types (type, title, channels, tax operation):\n\n"
                                + _TYPES_DOC})
async def submit(channel: str, request: Request, intake: Intake, state: State) -> JSONResponse:
    try:
        cfg = _config(intake, channel)
        body = await _read_body(request, state.deps.settings.max_body_bytes)
        _check_json_type(request)
        await _authenticate(state, channel, cfg, request, body)
        out = await intake.submit(channel, cfg, _parse(body))
    except Refused as exc:
        return await _refused(exc, intake, channel, request)
    answer = ApplicationAccepted(application_id=out.application_id, status=out.status,
                                 duplicate=out.duplicate)
    return JSONResponse(answer.model_dump(), status_code=200 if out.duplicate else 202)


@router.get("/channels/{channel}/applications/{application_id}",
            summary="The status of one of the channel's applications (signed, empty body)",
            response_model=ApplicationView, responses=_ERRORS,
            openapi_extra={"parameters": _AUTH_PARAMETERS})
async def get_status(channel: str, application_id: str, request: Request, intake: Intake,
                     state: State) -> JSONResponse:
    try:
        cfg = _config(intake, channel)
        body = await _read_body(request, state.deps.settings.max_body_bytes)
        await _authenticate(state, channel, cfg, request, body)
        row = await intake.find(channel, application_id)
    except Refused as exc:
        return await _refused(exc, intake, channel, request)
    view = ApplicationView(application_id=row["id"], **{
        k: row[k] for k in ApplicationView.model_fields if k != "application_id"})
    return JSONResponse(view.model_dump(mode="json"))
