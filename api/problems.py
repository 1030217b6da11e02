"""One error shape for the hub's own HTTP answers: RFC 7807 ``application/problem+json``.

Before issue 15 an error came in five shapes (FastAPI's ``{"detail": [...]}``, the
hub's ``{"detail": {"code", "reason", "errors"}}``, ``{"detail": "text"}``, a bare
``{"code", "errors"}`` and the national ``{"infcode": -1, ...}``). Every answer the hub
defines itself is now a problem document::

    {"type": "urn:nanjing-hub:problem:validation",   # about:blank for a plain HTTP status
     "title": "Unprocessable Content",               # the status phrase, or the code's title
     "status": 422,
     "detail": "payload.id_number: wrong check character",   # for people; masked
     "instance": "/admin/batches/students/enroll",   # the request's path (no query); masked
     "code": "VALIDATION",                           # the hub's stable code, when it has one
     "errors": [{"loc": ["body", "payload", "id_number"], "field": "payload.id_number",
                 "msg": "wrong check character", "type": "value_error"}]}

``errors`` is there for field-level refusals only (FastAPI's request validation and
the hub's own (field, reason) lists); it names where and why, never the submitted
value (pydantic's ``input``/``ctx`` are dropped, messages and paths are masked with
``contracts.masking.mask_text``, so an ID number quoted in a reason or a path shows
masked). Extension members (``code``, ``errors``, ``job_id``...) are RFC 7807's; any
other than ``code``/``errors`` is the route's own data, as masked as its answers are.

How answers get here: ``install_problem_handlers`` (called by ``api.app.build_app``)
turns FastAPI's ``RequestValidationError``, Starlette's ``HTTPException`` (the 404 of an
unknown path, 405, the auth module's 401/403), a ``HubError`` a route lets through
(``hub_error_status`` maps its class to a status) and anything unexpected (a 500 whose
body says nothing about the failure; the masked traceback is logged on ``hub.errors``)
into problem documents. A route answering an error itself raises ``Problem`` (an
``HTTPException`` carrying code, errors and extension members) or returns ``problem(...)``.

Doors that KEEP a partner's shape (their in-route answers; the framework-level errors
above, e.g. a 404 for an unknown path or a 405, are problem documents everywhere, as no
partner contract defines them). ``PARTNER_SHAPES`` lists them with the contract that
fixes them; a partner's client parses those answers, so changing them would break a
partner protocol:

    /partners/core/events, /core/refunds   national envelope (infcode, err_msg): conventions.md
    /partners/core/settlements             national envelope (F10 assistance settlements)
    /partners/tax/callback                 SOAP 1.1 faults of the hub's tax WSDL (contracts/)
    /partners/departments/{dept}/lists     department receipt {accepted, code, refused}
                                           (contracts/DIFFICULTY.md)
    /partners/assistance/queries/*         assistance platform answer {code, field, reason}
    /partners/union/*                      union platform answer {code, field|errors}
    /partners/drugs/*, /partners/pharmacy/*  drug-sales partners' answers {code, refused}
    /partners/erp_finance/callback         finance's answer {code, message, data}
    /voucher/*, /kiosk/*, /wechat/*        F13 receipt {accepted, code, refused}
                                           (contracts/VOUCHER.md)
    /partners/institutions/national        national envelope (F14 3201/3202/9101/9102)
    /partners/core/serious-illness/*       national envelope (F15 H8501)
    /partners/insurer/payments             the insurer's answer (contracts/SERIOUS_ILLNESS.md)

Channels (``/channels/...``) are the hub's own protocol (README, contracts/CHANNEL_RULES.md): their
refusals are problem documents (the signed part is the request, not the error answer).
Admin, ops, caseworker, queries and the console's JSON are problem documents. The
console's HTML pages (``api/console``) render their own HTML errors.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from http import HTTPStatus
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.errors import (
    BusinessRejected,
    ClientError,
    HubError,
    PartnerTimeout,
    PartnerUnavailable,
    PermanentError,
    UnknownMessageType,
    ValidationFailed,
)
from contracts.masking import mask_text

__all__ = [
    "PARTNER_SHAPES",
    "PROBLEM_JSON",
    "TYPE_PREFIX",
    "FieldError",
    "Problem",
    "ProblemDocument",
    "ProblemGuard",
    "ProblemResponse",
    "answer",
    "field_error",
    "field_errors_of",
    "hub_error_status",
    "hub_problem",
    "install_problem_handlers",
    "problem",
    "problem_body",
    "validation_errors",
]

log = logging.getLogger("hub.errors")

PROBLEM_JSON: Final = "application/problem+json"
TYPE_PREFIX: Final = "urn:nanjing-hub:problem:"
"""``type`` is ``TYPE_PREFIX`` + the code in lower case with dashes; ``about:blank`` when
the answer is just its HTTP status (RFC 7807 4.2: then ``title`` is the status phrase)."""

PARTNER_SHAPES: Final[dict[str, str]] = {
    "/partners/core/events": "national envelope (infcode, err_msg): conventions.md",
    "/partners/core/refunds": "national envelope: contracts/FINANCE.md",
    "/partners/core/settlements": "national envelope: contracts/DIFFICULTY.md (F7)",
    "/partners/tax/callback": "SOAP 1.1 faults of the hub's tax WSDL",
    "/partners/departments/": "department receipt {accepted, code, refused}",
    "/partners/assistance/": "assistance platform answer {code, field, reason}",
    "/partners/union/": "union platform answer {code, field, reason | errors}: UNION_CASES.md",
    "/partners/drugs/": "drug-sales answer {code, refused}: contracts/DRUG_SALES.md",
    "/partners/pharmacy/": "pharmacy answer {code, refused}",
    "/partners/erp_finance/": "finance answer {code, message, data}",
    "/voucher/": "institution/core receipt {accepted, code, refused}: contracts/VOUCHER.md",
    "/kiosk/": "kiosk answer {accepted, code, refused}: contracts/VOUCHER.md (F13)",
    "/wechat/": "WeChat platform answer {accepted, code, refused}: contracts/VOUCHER.md",
    "/partners/institutions/": "national envelope (infcode, err_msg): INSTITUTION_RECON.md",
    "/partners/core/serious-illness/": "national envelope: contracts/SERIOUS_ILLNESS.md",
    "/partners/insurer/": "insurer answer: contracts/SERIOUS_ILLNESS.md (F15)",
}
"""Path prefix -> the partner contract that fixes its in-route answers (kept as is)."""


_PATH: ContextVar[str | None] = ContextVar("problem_instance", default=None)
"""The path of the request being answered (set by ``ProblemGuard``): ``instance`` of a
``problem(...)`` a route returns."""


class FieldError(BaseModel):
    """One field at fault: where (``loc``), which (``field``), why (``msg``), what kind."""

    loc: list[str | int]
    field: str
    msg: str
    type: str


class ProblemDocument(BaseModel):
    """The RFC 7807 body (for OpenAPI ``responses=``); extension members are allowed."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["urn:nanjing-hub:problem:validation", "about:blank"])
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    code: str | None = None
    errors: list[FieldError] | None = None


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON


_HEADERS: Final = frozenset({"authorization", "content-type", "content-length"})


def field_error(field: str, msg: str, *, type: str = "invalid",
                where: str | None = None) -> dict[str, Any]:
    """One ``errors`` entry from a (field, reason) pair; ``where`` heads ``loc`` (by default
    ``header`` for a header's name, ``X-...`` or a standard one, else ``body``)."""
    field, msg = mask_text(str(field)), mask_text(str(msg))
    if where is None:
        where = "header" if field.startswith("X-") or field.lower() in _HEADERS else "body"
    loc: list[str | int] = [where, *(p for p in field.split(".") if p)] \
        if field and field != where else [where]
    return {"loc": loc, "field": field or where, "msg": msg, "type": type}


def field_errors_of(pairs: Iterable[tuple[str, str] | Sequence[str]], *, type: str = "invalid",
                    where: str | None = None) -> list[dict[str, Any]]:
    """``errors`` entries of (field, reason) pairs (``ValidationFailed.errors`` and alike)."""
    return [field_error(str(f), str(r), type=type, where=where) for f, r in pairs]


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Where and what, without the submitted values: ``loc``, ``field`` (``loc`` without its
    ``body``/``query``/``path`` head, dotted), ``msg`` and ``type`` of each error, masked (a
    message or a dict key may quote an ID number); ``input`` and ``ctx`` (which carry the
    values) are dropped."""
    out = []
    for e in exc.errors():
        loc = [mask_text(p) if isinstance(p, str) else p for p in e.get("loc", ())]
        tail = loc[1:] if loc and loc[0] in ("body", "query", "path", "header", "cookie") \
            else loc
        field = ".".join(str(p) for p in tail) or (str(loc[0]) if loc else "")
        out.append({"loc": loc, "field": field,
                    "msg": mask_text(str(e.get("msg", ""))).removeprefix("Value error, "),
                    "type": str(e.get("type", ""))})
    return out


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_body(status: int, detail: str | None = None, *, code: str | None = None,
                 title: str | None = None, errors: list[dict[str, Any]] | None = None,
                 instance: str | None = None, **extra: Any) -> dict[str, Any]:
    """A problem document (masked): see the module docstring for its members."""
    body: dict[str, Any] = {
        "type": f"{TYPE_PREFIX}{code.lower().replace('_', '-')}" if code else "about:blank",
        "title": title or _title(status), "status": status}
    if detail:
        body["detail"] = mask_text(detail)
    instance = instance or _PATH.get()
    if instance:
        body["instance"] = mask_text(instance)
    if code:
        body["code"] = code
    if errors is not None:
        body["errors"] = errors
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def problem(status: int, detail: str | None = None, *, code: str | None = None,
            title: str | None = None, errors: list[dict[str, Any]] | None = None,
            instance: str | None = None, headers: Mapping[str, str] | None = None,
            **extra: Any) -> ProblemResponse:
    """A ``ProblemResponse`` for a route to return; ``instance`` defaults to the request's
    path (``ProblemGuard``)."""
    return ProblemResponse(problem_body(status, detail, code=code, title=title, errors=errors,
                                        instance=instance, **extra),
                           status_code=status, headers=dict(headers or {}))


class Problem(StarletteHTTPException):
    """Raise from a route: answered as a problem document with the request's path."""

    def __init__(self, status: int, detail: str | None = None, *, code: str | None = None,
                 title: str | None = None, errors: list[dict[str, Any]] | None = None,
                 headers: Mapping[str, str] | None = None, **extra: Any) -> None:
        super().__init__(status, detail or _title(status), headers=dict(headers or {}))
        self.code, self.title, self.errors, self.extra = code, title, errors, extra

    def response(self, instance: str | None) -> ProblemResponse:
        return problem(self.status_code, str(self.detail), code=self.code, title=self.title,
                       errors=self.errors, instance=instance, headers=self.headers,
                       **self.extra)


_LEGACY_LISTS: Final = ("refused", "errors")
_TEXTS: Final = ("reason", "detail", "message", "error")


def _entries(items: Iterable[Any]) -> list[dict[str, Any]]:
    out = []
    for e in items:
        if isinstance(e, Mapping):
            entry = field_error(str(e.get("field") or ""),
                                str(e.get("reason") or e.get("msg") or e.get("error") or ""))
            if e.get("row") is not None:  # a file's row: located by its number
                entry["loc"] = [entry["loc"][0], "rows", e["row"], *entry["loc"][1:]]
                entry["row"] = e["row"]
            out.append(entry)
        elif isinstance(e, Sequence) and not isinstance(e, str) and len(e) == 2:
            out.append(field_error(str(e[0]), str(e[1])))
    return out


def answer(status: int, body: Mapping[str, Any], *, headers: Mapping[str, str] | None = None
           ) -> JSONResponse:
    """A service's ``(status, answer)`` as the hub answers it: below 400 as it is, else a
    problem document: ``code``/``reason``/``detail`` of the answer, its ``refused`` or
    ``errors`` list (``{field, reason}`` or (field, reason)) as ``errors``, its other members
    (``order_no``, ``case``...) kept as extensions."""
    if status < 400:
        return JSONResponse(dict(body), status_code=status, headers=dict(headers or {}))
    listed = next((body[k] for k in _LEGACY_LISTS if isinstance(body.get(k), list)), None)
    errors = _entries(listed) if listed is not None else None
    detail = next((body[k] for k in _TEXTS if isinstance(body.get(k), str) and body[k]), None)
    if not isinstance(detail, str):
        detail = "; ".join(f"{e['field']}: {e['msg']}" for e in errors or ()) or None
    extra = {k: v for k, v in body.items()
             if k not in ("code", "status", "type", "title", "instance")
             and not (k in _LEGACY_LISTS and isinstance(v, list))
             and not (k in _TEXTS[:3] and isinstance(v, str))}  # a report's error stays
    code = body.get("code")
    return problem(status, detail, code=str(code) if code is not None else None, errors=errors,
                   headers=headers, **extra)


def hub_error_status(exc: HubError) -> int:
    """The HTTP status of a ``HubError`` a route lets through."""
    if isinstance(exc, ValidationFailed | BusinessRejected):
        return 422
    if isinstance(exc, UnknownMessageType):
        return 404
    if isinstance(exc, ClientError):
        return 502  # the partner refused the hub's request: not the caller's fault
    if isinstance(exc, PartnerTimeout):
        return 504
    if isinstance(exc, PartnerUnavailable):
        return 503
    if isinstance(exc, PermanentError):
        return 422
    return 500


def _from_http_detail(status: int, detail: Any) -> dict[str, Any]:
    """Starlette's ``detail``: a text, a legacy ``{"code", "reason", "errors"}`` dict, or a
    list of ``{field, reason|error}``."""
    if isinstance(detail, list):
        errors = _entries(detail)
        return {"detail": "; ".join(f"{e['field']}: {e['msg']}" for e in errors) or None,
                "code": "VALIDATION" if status == 422 else None, "errors": errors}
    if isinstance(detail, Mapping):
        listed = detail.get("errors")
        return {"detail": str(detail.get("reason") or detail.get("message") or _title(status)),
                "code": detail.get("code"),
                "errors": _entries(listed) if isinstance(listed, list) else None}
    return {"detail": None if detail is None else str(detail)}


async def _on_http_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, Problem):
        return exc.response(request.url.path)
    if not isinstance(exc, StarletteHTTPException):
        raise exc
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return problem(exc.status_code, instance=request.url.path, headers=exc.headers,
                   **_from_http_detail(exc.status_code, exc.detail))


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):
        raise exc
    errors = validation_errors(exc)
    return problem(422, "; ".join(f"{e['field']}: {e['msg']}" for e in errors),
                   code="VALIDATION", title="Request validation failed", errors=errors,
                   instance=request.url.path)


def hub_problem(exc: HubError, status: int | None = None, *, instance: str | None = None,
                **extra: Any) -> ProblemResponse:
    """A ``HubError`` as a problem: its public code and text, its (field, reason) list for a
    ``ValidationFailed``, the partner it concerns; ``status`` else ``hub_error_status``."""
    errors = field_errors_of(exc.errors) if isinstance(exc, ValidationFailed) else None
    return problem(status or hub_error_status(exc), exc.public_text, code=exc.public_code,
                   errors=errors, instance=instance, partner=exc.partner, **extra)


async def _on_hub_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HubError):
        raise exc
    return hub_problem(exc, instance=request.url.path)


def _unexpected(exc: BaseException, path: str) -> ProblemResponse:
    if isinstance(exc, ConnectionError):  # e.g. the broker client being rebuilt (failover)
        log.warning("answering %s: a server the hub needs is unreachable: %s",
                    mask_text(path), mask_text(str(exc) or type(exc).__name__))
        return problem(503, "a server the hub needs (broker, database) is unreachable right "
                       "now; nothing was taken, send it again shortly", code="UNAVAILABLE",
                       title="Service unavailable", instance=path, headers={"Retry-After": "5"})
    log.error("unexpected error answering %s: %s", mask_text(path),
              mask_text("".join(traceback.format_exception(exc))).rstrip())
    return problem(500, "the hub failed to answer this request; the failure is logged",
                   code="INTERNAL", title="Internal error", instance=path)


class ProblemGuard:
    """ASGI middleware: an exception no handler took becomes a 500 problem document.

    Starlette's ``ServerErrorMiddleware`` would answer a plain-text 500 and hand the
    exception to the server, which logs it unmasked; this answers and logs (masked) itself.
    An exception after the answer started cannot be answered and goes on up.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        token = _PATH.set(str(scope.get("path", "")) or None)

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as exc:
            if started:
                raise
            await _unexpected(exc, str(scope.get("path", "")))(scope, receive, send)
        finally:
            _PATH.reset(token)


def install_problem_handlers(app: FastAPI) -> None:
    """Every framework-level error, a ``HubError`` and anything unexpected -> problem+json."""
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(HubError, _on_hub_error)
    app.add_middleware(ProblemGuard)
