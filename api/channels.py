"""Citizen-channel ingress (flow F1): applications in, their status out.

    POST /channels/{channel}/applications                   submit; 202 with the hub's id
    GET  /channels/{channel}/applications/{application_id}  where it stands

A submission is checked in the order that spends the least on a stranger:
the channel exists (404), the body is within ``max_body_bytes`` (413, checked
while reading, before any parsing), it is ``application/json`` (415), it is
the channel's own (401: signature, timestamp window, unused nonce, or API
key), it is JSON (400), the envelope is right (422), the type is one of the
channel's own (403), the payload meets its contract (422 naming
``payload.<field>``). Every refusal is journalled and nothing is stored or
published. Errors are ``{"detail": {"code", "reason", "errors": [{"field",
"reason"}]}}``.

An accepted application is stored as ``received``, published as ONE
``channel.application`` message (broker-confirmed), then marked ``validated``
and answered 202. Nothing is lost when the broker fails: the answer is 503,
the application stays ``received``, and the channel's retry with the same
``request_id`` publishes it again (same idempotency key, so the pipeline does
the work once even if the first publish did reach the broker). A repeat of a
request already handed on is answered 200 with the first application's id and
status and publishes nothing; a ``request_id`` reused for a different payload
is 409.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.exc import SQLAlchemyError

from adapters.channels.auth import (
    HEADER_API_KEY,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    ChannelAuthError,
    NonceStore,
    check_type_allowed,
    verify_request,
)
from config.settings import ChannelConfig
from contracts.channels import (
    APPLICATION_TYPES,
    TAX_OPERATION,
    ApplicationRequest,
    entity_of,
    payload_json,
    validate_payload,
)
from contracts.envelope import HubMessage, entity_key, idempotency_key
from contracts.errors import TransientError, ValidationFailed
from services.deps import Deps
from storage.applications import ApplicationStore, payload_hash
from storage.journal import LogEntry, TxnUpdate

__all__ = ["MESSAGE_TYPE", "ApplicationAccepted", "ApplicationView", "ErrorBody",
           "channels_router"]

log = logging.getLogger("hub.channels")

MESSAGE_TYPE: Final = "channel.application"
_HOP: Final = "ingress.channel"
_APP_ID = re.compile(r"^[0-9a-f]{32}$")


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


class ErrorItem(BaseModel):
    field: str
    reason: str


class ErrorDetail(BaseModel):
    code: str
    reason: str
    errors: list[ErrorItem] = Field(default_factory=list)
    application_id: str | None = None


class ErrorBody(BaseModel):
    detail: ErrorDetail


class _Refused(Exception):
    """A refusal on its way to the response and the journal."""

    def __init__(self, status: int, code: str, errors: Sequence[tuple[str, str]], *,
                 app_id: str | None = None) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.errors = list(errors)
        self.app_id = app_id

    def response(self) -> JSONResponse:
        detail: dict[str, Any] = {
            "code": self.code, "reason": "; ".join(f"{f}: {r}" for f, r in self.errors),
            "errors": [{"field": f, "reason": r} for f, r in self.errors]}
        if self.app_id:
            detail["application_id"] = self.app_id
        return JSONResponse({"detail": detail}, status_code=self.status)


def _errors(exc: ValidationError) -> list[tuple[str, str]]:
    return [(".".join(str(p) for p in e["loc"]) or "body",
             str(e["msg"]).removeprefix("Value error, ")) for e in exc.errors()]


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


_AUTH_PARAMETERS: Final = [
    {"name": HEADER_TIMESTAMP, "in": "header", "required": False, "schema": {"type": "string"},
     "description": "hmac-sha256 channels: unix seconds, within the channel's max_skew_s"},
    {"name": HEADER_NONCE, "in": "header", "required": False, "schema": {"type": "string"},
     "description": "hmac-sha256 channels: 16-64 of A-Z a-z 0-9 _ -, never reused"},
    {"name": HEADER_SIGNATURE, "in": "header", "required": False, "schema": {"type": "string"},
     "description": "hmac-sha256 channels: hex HMAC-SHA256 of timestamp\\nnonce\\nbody"},
    {"name": HEADER_API_KEY, "in": "header", "required": False, "schema": {"type": "string"},
     "description": "api-key channels: the channel's key"},
]
_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    code: {"model": ErrorBody, "description": text} for code, text in (
        (400, "not JSON"), (401, "not authenticated (the header is named)"),
        (403, "type not allowed for this channel"), (404, "unknown channel or application"),
        (409, "request_id reused for a different payload"), (413, "body too large"),
        (415, "not application/json"), (422, "invalid envelope or payload (fields named)"),
        (503, "broker or store unavailable: retry with the same request_id"))}
_TYPES_DOC: Final = "\n".join(
    f"- `{t.code}` {t.title} ({', '.join(t.channels)}) -> {t.operation}"
    for t in APPLICATION_TYPES.values())


def channels_router(deps: Deps, store: ApplicationStore, nonces: NonceStore, *,
                    today: Callable[[], date] | None = None,
                    clock: Callable[[], float] | None = None) -> APIRouter:
    """The F1 ingress. ``today`` (Beijing date for age rules) and ``clock`` (unix time
    for the timestamp window) are for tests; by default the real ones."""
    r = APIRouter(tags=["channels (F1)"])
    settings = deps.settings

    def config(channel: str) -> ChannelConfig:
        cfg = settings.channels.get(channel)
        if cfg is None:
            raise _Refused(404, "UNKNOWN_CHANNEL", [("channel", f"no channel {channel[:40]!r}")])
        return cfg

    async def read_body(request: Request) -> bytes:
        cap = settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                raise _Refused(400, "BAD_REQUEST", [("Content-Length", "must be a number")])
            if int(declared) > cap:
                raise _Refused(413, "TOO_LARGE",
                               [("body", f"{int(declared)} bytes is over the {cap}-byte limit")])
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                raise _Refused(413, "TOO_LARGE", [("body", f"over the {cap}-byte limit")])
            chunks.append(chunk)
        return b"".join(chunks)

    def check_json_type(request: Request) -> None:
        media, _, params = request.headers.get("content-type", "").partition(";")
        if media.strip().lower() != "application/json":
            raise _Refused(415, "UNSUPPORTED_MEDIA_TYPE",
                           [("Content-Type", f"must be application/json, got "
                                             f"{media.strip()[:60] or 'none'!r}")])
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset" and \
                    value.strip().strip('"').lower() not in ("utf-8", "utf8"):
                raise _Refused(415, "UNSUPPORTED_MEDIA_TYPE",
                               [("Content-Type", "charset must be utf-8")])

    async def authenticate(channel: str, cfg: ChannelConfig, request: Request,
                           body: bytes) -> None:
        try:
            await verify_request(channel, cfg, request.headers, body, nonces,
                                 now=clock() if clock else None)
        except ChannelAuthError as exc:
            raise _Refused(exc.status, exc.code, exc.errors) from None
        except TransientError as exc:
            raise _Refused(503, "UNAVAILABLE", [(HEADER_NONCE, exc.reason)]) from None

    def parse(body: bytes) -> ApplicationRequest:
        try:
            data = json.loads(body, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise _Refused(400, "BAD_JSON", [("body", f"not valid JSON: {exc}"[:200])]) from None
        if not isinstance(data, dict):
            raise _Refused(400, "BAD_JSON", [("body", "must be a JSON object")])
        try:
            return ApplicationRequest.model_validate(data)
        except ValidationError as exc:
            raise _Refused(422, "VALIDATION", _errors(exc)) from None

    async def journal(outcome: str, channel: str, cid: str, detail: dict[str, Any],
                      *txn: TxnUpdate) -> None:
        """The interaction log; a journal failure never changes the channel's answer."""
        partner = channel if channel in settings.channels else "unknown"
        try:
            await deps.journal.write(LogEntry(
                message_id=cid, correlation_id=cid, type=MESSAGE_TYPE, partner=partner,
                direction="in", hop=_HOP, outcome=outcome, detail=detail), *txn)
        except Exception:
            log.warning("could not journal a %s channel request", outcome, exc_info=True)

    async def refused(exc: _Refused, channel: str, request: Request) -> JSONResponse:
        await journal("rejected", channel, exc.app_id or "-", {
            "method": request.method, "channel": channel[:40], "status": exc.status,
            "code": exc.code, "errors": [{"field": f, "reason": r} for f, r in exc.errors]})
        return exc.response()

    @r.post("/channels/{channel}/applications", status_code=202,
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
    async def submit(channel: str, request: Request) -> JSONResponse:
        try:
            return await _submit(channel, request)
        except _Refused as exc:
            return await refused(exc, channel, request)

    async def _submit(channel: str, request: Request) -> JSONResponse:
        cfg = config(channel)
        body = await read_body(request)
        check_json_type(request)
        await authenticate(channel, cfg, request, body)
        req = parse(body)
        try:
            check_type_allowed(channel, cfg, req.type)
            model = validate_payload(req.type, req.payload, today=today() if today else None)
        except ChannelAuthError as exc:
            raise _Refused(exc.status, exc.code, exc.errors) from None
        except ValidationFailed as exc:
            raise _Refused(422, exc.code, exc.errors) from None
        payload = payload_json(model)
        try:
            row, created = await store.create(channel, req.request_id, req.type, payload)
        except SQLAlchemyError as exc:
            log.error("application store failed: %s", exc)
            raise _Refused(503, "UNAVAILABLE", [("store", "the application store is "
                                                          "unavailable; retry")]) from None
        app_id: str = row["id"]
        if not created:
            if row["payload_hash"] != payload_hash(req.type, payload):
                raise _Refused(409, "CONFLICT", [("request_id", f"already used for a different "
                                                                f"application ({app_id})")],
                               app_id=app_id)
            if row["status"] != "received":
                await journal("duplicate", channel, app_id, {"request_id": req.request_id,
                                                              "status": row["status"]})
                return JSONResponse(ApplicationAccepted(
                    application_id=app_id, status=row["status"], duplicate=True).model_dump())
        ent = entity_of(req.type, model)
        msg = HubMessage(
            type=MESSAGE_TYPE, source=f"channel.{channel}", target="core",
            correlation_id=app_id,
            idempotency_key=idempotency_key(MESSAGE_TYPE, f"{channel}:{req.request_id}",
                                            payload),
            entity_key=entity_key(*ent) if ent else entity_key("app", app_id),
            payload={"application_id": app_id, "channel": channel, "type": req.type,
                     "request_id": req.request_id, "tax_operation": TAX_OPERATION[req.type],
                     "payload": payload})
        try:
            await deps.publisher.publish(msg)  # confirmed by the broker before we answer
        except Exception as exc:
            log.warning("publishing application %s failed: %s", app_id, exc)
            await journal("failed", channel, app_id, {"request_id": req.request_id,
                                                      "error": type(exc).__name__})
            raise _Refused(503, "UNAVAILABLE", [("broker", "the application is kept as "
                                                           "received; retry with the same "
                                                           "request_id")],
                           app_id=app_id) from None
        status = "validated"
        try:
            if not await store.set_status(app_id, "validated"):
                current = await store.get(app_id)
                status = current["status"] if current else status
        except SQLAlchemyError as exc:  # published: the pipeline moves it on from here
            log.warning("could not mark application %s validated: %s", app_id, exc)
            status = "received"
        await journal("ok", channel, app_id,
                      {"request_id": req.request_id, "type": req.type,
                       "message_id": msg.message_id, "republished": not created},
                      TxnUpdate(app_id, MESSAGE_TYPE, f"{channel}:{req.request_id}",
                                f"channel.{channel}", "received", only_if_new=True))
        return JSONResponse(ApplicationAccepted(application_id=app_id, status=status
                                                ).model_dump(), status_code=202)

    @r.get("/channels/{channel}/applications/{application_id}",
           summary="The status of one of the channel's applications (signed, empty body)",
           response_model=ApplicationView, responses=_ERRORS,
           openapi_extra={"parameters": _AUTH_PARAMETERS})
    async def get_status(channel: str, application_id: str, request: Request) -> JSONResponse:
        try:
            cfg = config(channel)
            body = await read_body(request)
            await authenticate(channel, cfg, request, body)
            row = (await store.get_for_channel(channel, application_id)
                   if _APP_ID.match(application_id) else None)
            if row is None:
                raise _Refused(404, "NOT_FOUND", [("application_id", f"{channel} has no "
                                                                     f"application "
                                                                     f"{application_id[:40]}")])
        except _Refused as exc:
            return await refused(exc, channel, request)
        view = ApplicationView(application_id=row["id"], **{
            k: row[k] for k in ApplicationView.model_fields if k != "application_id"})
        return JSONResponse(view.model_dump(mode="json"))

    return r
