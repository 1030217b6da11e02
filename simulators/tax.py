"""Tax bureau simulator (税务 统模式) speaking real SOAP 1.1 over HTTP.

Behaves like the partner the hub must survive, not like a mock: it validates
requests (every submit and query of the catalogue) against ``tax.xsd``, deduplicates on
``ywlsh``, answers with a 受理回执 at once and pushes the result later with
FeedbackNotify to the hub, retrying that callback until the hub answers 200 +
``retStatus`` S. Every call to the hub is signed as partner ``tax`` with
``callback_secret`` (the hub's ``partners.tax.secret``; ``contracts.signing``): the
hub refuses unsigned calls (``partner_auth`` signs pushes sent on tax's behalf).
Effects are keyed ``{operation}:{shxydm}:{zjhm}``. Side effects are counted in
``SimState.log`` (never from the hub's own log), and faults come from
``SimState.draw`` so tests and the demo switch them over ``/_sim``.

Routes: ``GET /tax/ws?wsdl``, ``POST /tax/ws``, ``GET /tax/ws/health``, ``/_sim/*``.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import logging
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import httpx
from fastapi import FastAPI, Request, Response
from lxml import etree

from adapters.http import bounded_client
from adapters.signing import SignedAuth
from adapters.tax.initial_load import is_load_call
from adapters.tax.soap import (
    OP_ENROLL,
    OP_STOP,
    RET_OK,
    SOAP_ACTION_FEEDBACK,
    SOAP_CONTENT_TYPE,
    TAX_WSDL,
    TAX_XSD,
    build_ack,
    build_fault,
    build_feedback_request,
    build_query_reply,
    parse_feedback_reply,
    parse_payload,
    parse_request,
)
from contracts.clock import BEIJING
from contracts.employee import TaxFeedback
from contracts.errors import HubError, ValidationFailed
from contracts.taxcat import from_wire
from contracts.taxcat import op as catalogue_op
from simulators.initial_load import InitialLoadDesk, row_rejections
from simulators.simkit import Fault, SimState, sim_router
from simulators.student_batch import StudentBatchDesk
from simulators.tax_rules import Decision, TaxBook

__all__ = [
    "DEFAULT_REJECT_SUFFIXES",
    "PARTNER",
    "CallbackRetry",
    "TaxSimulator",
    "create_app",
    "partner_auth",
]

log = logging.getLogger(__name__)

#: ID numbers whose 4 digits before the check char are listed here get a clzt=2 feedback.
DEFAULT_REJECT_SUFFIXES: Final = frozenset({"4444"})
PARTNER: Final = "tax"
"""The partner name tax signs its calls to the hub as (``settings.partners``)."""
_REJECT_CODE: Final = "TX201"
_REJECT_TEXT: Final = "该人员在其他单位存在有效参保记录"
_ADDRESS_PLACEHOLDER: Final = "__SOAP_ADDRESS__"
_XSD_NS: Final = "http://www.w3.org/2001/XMLSchema"
_WSDL_NS: Final = "http://schemas.xmlsoap.org/wsdl/"
_WSDL_SOAP_NS: Final = "http://schemas.xmlsoap.org/wsdl/soap/"


@dataclass(frozen=True)
class CallbackRetry:
    """How hard tax pushes a feedback: exponential backoff, bounded (default ~60 s, 20 tries)."""

    attempts: int = 20
    first_delay_s: float = 0.1
    max_delay_s: float = 4.0
    timeout_s: float = 5.0

    def delay(self, attempt: int) -> float:
        return float(min(self.first_delay_s * 2 ** attempt, self.max_delay_s))


def _safe_parser() -> Any:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _served_wsdl() -> str:
    """tax.wsdl with tax.xsd inlined, so ``?wsdl`` is one self-contained document."""
    wsdl = etree.parse(str(TAX_WSDL), _safe_parser()).getroot()
    xsd = etree.parse(str(TAX_XSD), _safe_parser()).getroot()
    types = wsdl.find(f"{{{_WSDL_NS}}}types")
    for schema in list(types):
        if schema.find(f"{{{_XSD_NS}}}import") is not None:
            types.replace(schema, xsd)
    address = wsdl.find(f".//{{{_WSDL_SOAP_NS}}}address")
    address.set("location", _ADDRESS_PLACEHOLDER)
    return str(etree.tostring(wsdl, xml_declaration=True, encoding="UTF-8").decode())


def _soap(body: bytes, status: int = 200) -> Response:
    return Response(content=body, status_code=status, media_type=SOAP_CONTENT_TYPE)


class TaxSimulator:
    """Everything the simulated tax service remembers beyond ``SimState``.

    Acks are kept per ``ywlsh`` so a resend gets the identical answer; callback
    tasks are kept referenced (asyncio only holds weak references) and cancelled
    on shutdown. ``stops`` holds the body of every EmployeeStop that took effect,
    by ``ywlsh`` (what tax recorded: the stop date and reason).
    """

    def __init__(self, state: SimState, *, callback_url: str | None, feedback_delay_s: float,
                 reject_suffixes: Collection[str], retry: CallbackRetry,
                 callback_transport: httpx.AsyncBaseTransport | None,
                 callback_secret: str | None = None) -> None:
        self.state = state
        self.callback_url = callback_url
        self.callback_auth = partner_auth(callback_secret) if callback_secret else None
        self.feedback_delay_s = feedback_delay_s
        self.reject_suffixes = frozenset(reject_suffixes)
        self.retry = retry
        self.acks: dict[str, bytes] = {}
        self.stops: dict[str, dict[str, str]] = {}
        self.book = TaxBook()
        self.batch_desk = StudentBatchDesk(draw=state.draw, log=state.log)
        self.load_desk = InitialLoadDesk(draw=state.draw, row_draw=row_rejections(state),
                                         log=state.log)
        self.queries = 0
        self.delivered: list[TaxFeedback] = []
        self.undelivered: list[TaxFeedback] = []
        self.callback_calls = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self._seq = itertools.count(1)
        self._schema = etree.XMLSchema(etree.parse(str(TAX_XSD), _safe_parser()))
        self._wsdl = _served_wsdl()
        self._callback_transport = callback_transport
        self._http: httpx.AsyncClient | None = None

    # ------------------------------------------------------------ SOAP endpoint

    def wsdl(self, base_url: str) -> str:
        location = base_url.rstrip("/") + "/tax/ws"
        return self._wsdl.replace(_ADDRESS_PLACEHOLDER, html.escape(location, quote=True))

    async def handle(self, body: bytes) -> Response:
        """One catalogue call: faults first; a query is answered; a submit replays or decides."""
        try:
            payload = parse_payload(body)
            if not self._schema.validate(payload):
                err = self._schema.error_log.last_error
                element = etree.QName(payload).localname
                raise ValidationFailed([(element, f"schema: {err.message}")])
            op, serial, f = parse_request(body)
        except ValidationFailed as exc:
            return _soap(build_fault("Client", exc.reason), 500)

        operation = catalogue_op(op)
        key = f"{op}:{operation.business_key(from_wire(operation, f))}"
        fault = self.state.draw(f"{key}:{serial}", operation=op)
        kind = fault.kind if fault else None
        if kind == "http_5xx":
            return Response("Service Temporarily Unavailable", status_code=503)
        if kind == "http_4xx":
            return Response("Bad Request", status_code=400)
        if kind == "soap_fault":
            return _soap(build_fault("Server", "税务系统内部错误 (simulated)"), 500)
        if kind == "bad_signature":
            return _soap(build_fault("Client", "报文签名校验失败 (simulated)"), 500)

        if operation.kind == "query":  # a read: no serial to replay, no effect to make
            await self.state.sleep_for(fault)
            self.queries += 1
            return _soap(build_query_reply(op, self.book.answer(op, from_wire(operation, f))))

        if serial in self.acks:
            self.state.log.replays += 1
            await self.state.sleep_for(fault)
            return _soap(self.acks[serial])

        if kind == "slow":
            await self.state.sleep_for(fault)
            if serial in self.acks:  # the client gave up and resent while we slept
                self.state.log.replays += 1
                return _soap(self.acks[serial])
        ack = self._decide(op, serial, f, key, fault)
        if kind == "timeout":
            await self.state.sleep_for(fault)
        return _soap(ack)

    def _decide(self, op: str, serial: str, f: dict[str, str], key: str,
                fault: Fault | None) -> bytes:
        """Answer and effects of a new serial; no awaits, so a concurrent resend cannot slip in.

        The division rule and the rejecting ID suffixes apply to EmployeeEnroll only.
        """
        enroll = op == OP_ENROLL
        decision = self.book.decide(op, f) if fault is None or fault.kind != "reject" \
            else Decision(fault.code, fault.text)
        if not decision.ok:
            ack = build_ack("F", decision.code, decision.text, operation=op)
        else:
            accept_no = f"SL{datetime.now(BEIJING):%Y%m%d}{next(self._seq):010d}"
            ack = build_ack("S", RET_OK, "受理成功", accept_no, operation=op)
            entity = str(f.get("zjhm") or f.get("shxydm") or key)
            self.state.log.record(key, entity=entity, value=serial)
            if op == OP_STOP:
                self.stops[serial] = dict(f)
            rejected = enroll and f["zjhm"][-5:-1] in self.reject_suffixes
            feedback = TaxFeedback(
                accept_no=accept_no, biz_msg_id=serial, operation=op,
                id_number=str(f.get("zjhm", ""))[:18],
                status="rejected" if rejected else "accepted",
                reason_code=_REJECT_CODE if rejected else "",
                reason_text=_REJECT_TEXT if rejected else f"{catalogue_op(op).title}成功",
            )
            for _ in range(2 if fault is not None and fault.kind == "duplicate" else 1):
                self._schedule(feedback)
        self.acks[serial] = ack
        return ack

    # ------------------------------------------------------------ feedback push

    def _schedule(self, feedback: TaxFeedback) -> None:
        if not self.callback_url:
            return
        task = asyncio.get_running_loop().create_task(self._deliver(self.callback_url, feedback))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            # Bounded: a burst of callbacks timing out must not leak httpcore pool slots
            # (``adapters.http``), or tax would stop telling the hub anything.
            self._http = bounded_client(limit=100, timeout=self.retry.timeout_s,
                                        transport=self._callback_transport)
        return self._http

    async def _deliver(self, url: str, feedback: TaxFeedback) -> None:
        """Push one FeedbackNotify until the hub says 200 + S, with bounded backoff."""
        await asyncio.sleep(self.feedback_delay_s)
        body = build_feedback_request(feedback)
        headers = {"Content-Type": SOAP_CONTENT_TYPE, "SOAPAction": f'"{SOAP_ACTION_FEEDBACK}"'}
        auth = self.callback_auth or httpx.USE_CLIENT_DEFAULT
        for attempt in range(self.retry.attempts):
            self.callback_calls += 1
            try:
                response = await self._client().post(url, content=body, headers=headers,
                                                     auth=auth)
                if response.status_code == 200 and parse_feedback_reply(response.content)[0]:
                    self.delivered.append(feedback)
                    return
                why = f"HTTP {response.status_code}"
            except (httpx.HTTPError, HubError) as exc:
                why = f"{type(exc).__name__}: {exc}"
            log.info("feedback %s attempt %d not acknowledged: %s",
                     feedback.accept_no, attempt + 1, why)
            await asyncio.sleep(self.retry.delay(attempt))
        log.warning("feedback %s undelivered after %d attempts",
                    feedback.accept_no, self.retry.attempts)
        self.undelivered.append(feedback)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for pending callbacks (tests): a deterministic end instead of sleeps."""
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=timeout)

    async def aclose(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "pending_callbacks": len(self.tasks),
                "delivered": len(self.delivered), "undelivered": len(self.undelivered),
                "callback_calls": self.callback_calls}


def partner_auth(secret: str) -> SignedAuth:
    """What tax signs its calls to the hub with (``httpx`` ``auth=``): partner ``tax``."""
    return SignedAuth(PARTNER, secret)


def create_app(state: SimState | None = None, *, callback_url: str | None,
               callback_secret: str | None = None, feedback_delay_s: float = 0.05,
               reject_suffixes: Collection[str] = DEFAULT_REJECT_SUFFIXES,
               callback_retry: CallbackRetry | None = None,
               callback_transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """The simulated tax service; ``app.state.tax`` is its ``TaxSimulator`` (for tests).

    ``callback_url`` None means results are never pushed (sync-only tests);
    ``callback_secret`` signs them (``partners.tax.secret`` of the hub; without it they
    go unsigned, and a hub refuses them).
    """
    sim = TaxSimulator(state or SimState(), callback_url=callback_url,
                       feedback_delay_s=feedback_delay_s, reject_suffixes=reject_suffixes,
                       retry=callback_retry or CallbackRetry(),
                       callback_transport=callback_transport, callback_secret=callback_secret)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await sim.aclose()

    app = FastAPI(title="Tax bureau simulator (税务 统模式)", lifespan=lifespan)
    app.state.tax = sim
    app.include_router(sim_router(sim.state))

    @app.get("/tax/ws/health")
    async def health() -> dict[str, Any]:
        return sim.health()

    @app.get("/tax/ws")
    async def wsdl(request: Request) -> Response:
        if "wsdl" not in request.query_params:
            return Response("append ?wsdl", status_code=404)
        return Response(sim.wsdl(str(request.base_url)), media_type="text/xml; charset=utf-8")

    @app.post("/tax/ws")
    async def soap_endpoint(request: Request) -> Response:
        body = await request.body()
        action = request.headers.get("soapaction", "")
        if "StudentBatch" in action or b"StudentBatch" in body[:2048]:
            status, payload = await sim.batch_desk.handle(action, body)
            return Response(payload, status_code=status, media_type=SOAP_CONTENT_TYPE)
        if is_load_call(action, body[:2048]):
            status, payload = await sim.load_desk.handle(action, body)
            return Response(payload, status_code=status, media_type=SOAP_CONTENT_TYPE)
        return await sim.handle(body)

    return app
