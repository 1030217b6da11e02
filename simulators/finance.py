"""用友 finance simulator (F10 退费): the REST open API of ``adapters.finance.client``.

Every call must be signed by the hub (``X-Partner-*``, caller ``hub``, the partner's
secret); answers are ``{code, message, data}``. What finance does, counted in
``SimState.log`` (never from the hub's own log):

    order:<order_no>:<version>   an order version taken (success or failure)
    pay:<order_no>               a payment made (exactly one per order, ever)
    withdraw:<order_no>          a withdrawal taken
    closure:<batch_id>:<page>    a 销号 page taken

Rules: an account number ending ``0000`` fails at once (收款账号校验失败, ``failure``);
one ending ``9999`` is taken and its payment bounces later (callback ``failed``); an
order whose items do not add up to its amount is refused (code 4002); an order number
withdrawn once is never taken again (4090), whatever version comes later, and is never
paid: payment (``pay``) and withdrawal are decided without an await between check and
change, so the one that comes first wins and the other sees it. Payment happens when
a test or the demo says (``pay``/``pay_all``, ``POST /_sim/finance/pay``) or, with
``auto_pay_s``, that long after the order was taken. Each payment is told to the hub
(``POST <callback_url>``, signed as ``erp_finance``, retried until answered; a 4xx
answer is kept in ``refused_callbacks``).

Fault switches (``simkit``, operation ``submit``, ``withdraw``, ``closure``, ``payments``,
``callback``): ``http_5xx``, ``timeout`` (the order is taken, the answer comes too late),
``slow``, ``reject`` (code and text), ``duplicate`` (the callback is sent twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr, ValidationError

from adapters.signing import MemoryNonceStore, SignedAuth, verify_signed
from config.settings import HubSettings, PartnerConfig
from contracts.clock import now_beijing
from contracts.finance import PARTNER, ClosurePage, PaymentQuery, RefundOrder
from contracts.ids import make_credit_code, make_id_number
from contracts.national import format_inf_time, make_msgid
from contracts.signing import PARTNER_HEADERS, SignatureRefused, request_target
from simulators.serving import serve_app
from simulators.simkit import Fault, SimState, sim_router

__all__ = ["FinanceBook", "FinanceSim", "create_app", "make_order", "refund_event",
           "start_finance"]

log = logging.getLogger("sim.finance")


@dataclass
class FinanceBook:
    """Finance's ledger: orders by number (latest version), payments, withdrawn numbers."""

    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    withdrawn: set[str] = field(default_factory=set)
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """serial -> the answer given (a repeat gets it again)."""
    payments: list[dict[str, Any]] = field(default_factory=list)
    closures: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused_callbacks: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0

    def paid(self, order_no: str) -> bool:
        return any(p["order_no"] == order_no for p in self.payments)


_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平"


def make_order(rng: random.Random, order_no: str, *, amount: str = "300.00",
               months: int = 3, unit: bool = False, source: str = "1",
               account_no: str | None = None, id_number: str | None = None) -> dict[str, Any]:
    """An approved order as core sends it (H7001 ``input.data``): ``amount`` split over
    ``months`` months ending last month (the last month takes the odd fen)."""
    total = Decimal(amount)
    end = now_beijing().date().replace(day=1) - timedelta(days=1)
    periods: list[str] = []
    d = end
    for _ in range(months):
        periods.insert(0, f"{d:%Y%m}")
        d = d.replace(day=1) - timedelta(days=1)
    share = (total / months).quantize(Decimal("0.01"), rounding="ROUND_DOWN")
    amounts = [share] * (months - 1) + [total - share * (months - 1)]
    name = rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(2))
    data: dict[str, Any] = {
        "order_no": order_no, "source": source, "payer_kind": "unit" if unit else "person",
        "name": f"南京{name}科技有限公司" if unit else name,
        "period_start": periods[0], "period_end": periods[-1],
        "items": [{"period": p, "insutype": "310", "amount": f"{a:.2f}"}
                  for p, a in zip(periods, amounts, strict=True)],
        "amount": f"{total:.2f}",
        "payee": {"account_name": name, "bank_name": "中国工商银行南京分行",
                  "account_no": account_no or f"6222{rng.randrange(10**11, 10**12)}"},
        "review_result": "1", "reviewed_at": now_beijing().isoformat(timespec="seconds")}
    if unit:
        data["unit_credit_code"] = make_credit_code(rng)
    else:
        data["id_number"] = id_number or make_id_number(rng, born=date(1980, 5, 17))
    if source == "2":
        data["refund_no"] = f"TF{order_no}"[:40]
    return data


def refund_event(infno: str, data: dict[str, Any], seq: int = 0) -> dict[str, Any]:
    """Core's signed-to-be national request of an F10 event (H7001-H7003)."""
    now = now_beijing()
    return {"infno": infno, "msgid": make_msgid("NJYBCORE0001", now, seq % 10000),
            "recer_sys_code": "HUB", "infver": "V1.0", "opter_type": "1", "opter": "core",
            "opter_name": "core", "inf_time": format_inf_time(now), "input": {"data": data}}


def _ok(data: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"code": "200", "message": "操作成功", "data": data})


def _no(code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "data": {}})


class FinanceSim:
    """The simulator's behaviour; ``create_app`` puts it behind HTTP."""

    def __init__(self, state: SimState, *, secret: str, callback_url: str = "",
                 callback_secret: str = "", auto_pay_s: float | None = None) -> None:
        self.state = state
        self.book = FinanceBook()
        self.secret = secret
        self.callback_url = callback_url
        self.callback_secret = callback_secret
        self.auto_pay_s = auto_pay_s
        self._seq = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None
        self.nonces = MemoryNonceStore()

    # ------------------------------------------------------------ calls

    async def submit(self, body: dict[str, Any], serial: str) -> JSONResponse:
        order_no, version = str(body.get("order_no", "")), body.get("version")
        fault = self.state.draw(f"order:{order_no}", operation="submit")
        early = await self._early(fault)
        if early is not None:
            return early
        if serial and serial in self.book.answers:
            self.state.log.replays += 1
            await self.state.sleep_for(fault)
            return _ok(self.book.answers[serial])
        try:
            order = RefundOrder.model_validate({k: v for k, v in body.items() if k != "version"})
        except ValidationError as exc:
            return _no("4000", f"{exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")
        if not isinstance(version, int) or version < 1:
            return _no("4000", "version must be a positive integer")
        if sum((i.amount for i in order.items), Decimal("0")) != order.amount:
            return _no("4002", "明细金额合计与退费金额不符")
        if order_no in self.book.withdrawn:
            return _no("4090", f"退费单 {order_no} 已回退，不再受理")
        known = self.book.orders.get(order_no)
        if known is not None:
            if known["version"] == version:
                self.state.log.replays += 1
                return _ok(known["answer"])
            if known["status"] == "paid":
                return _no("4091", f"退费单 {order_no} 已支付")
            if version < known["version"]:
                return _no("4092", f"退费单 {order_no} 已有更新版本 {known['version']}")
        if fault is not None and fault.kind == "slow":
            await self.state.sleep_for(fault)
        account = order.payee.account_no
        failed = account.endswith("0000")
        finance_no = f"YY{now_beijing():%Y%m%d}{next(self._seq):08d}"
        answer = {"order_no": order_no, "version": version,
                  "result": "failure" if failed else "success",
                  "reason": "收款账号校验失败" if failed else "", "finance_no": finance_no}
        self.book.orders[order_no] = {
            "version": version, "order": order, "status": "failed" if failed else "accepted",
            "finance_no": finance_no, "answer": answer, "paid_at": None}
        self.state.log.record(f"order:{order_no}:{version}", entity=order_no, value=version)
        if serial:
            self.book.answers[serial] = answer
        if not failed and self.auto_pay_s is not None:
            self._spawn(self._pay_later(order_no, self.auto_pay_s))
        if fault is not None and fault.kind == "timeout":
            await self.state.sleep_for(fault)
        return _ok(answer)

    async def withdraw(self, order_no: str, serial: str) -> JSONResponse:
        fault = self.state.draw(f"withdraw:{order_no}", operation="withdraw")
        early = await self._early(fault)
        if early is not None:
            return early
        known = self.book.orders.get(order_no)
        if known is not None and known["status"] == "paid":
            data = {"order_no": order_no, "result": "paid",
                    "paid_at": known["paid_at"], "finance_no": known["finance_no"]}
        else:  # not paid (or never seen): withdrawn for good
            if order_no not in self.book.withdrawn:
                self.book.withdrawn.add(order_no)
                self.state.log.record(f"withdraw:{order_no}", entity=order_no, value="withdraw")
            if known is not None:
                known["status"] = "withdrawn"
            data = {"order_no": order_no, "result": "withdrawn", "paid_at": None,
                    "finance_no": known["finance_no"] if known else ""}
        await self.state.sleep_for(fault)
        return _ok(data)

    async def closure(self, body: dict[str, Any], serial: str) -> JSONResponse:
        fault = self.state.draw(f"closure:{body.get('batch_id')}", operation="closure")
        early = await self._early(fault)
        if early is not None:
            return early
        if serial in self.book.closures:
            self.state.log.replays += 1
            return _ok(self.book.closures[serial])
        try:
            page = ClosurePage.model_validate(body)
        except ValidationError as exc:
            return _no("4002", f"销号批次校验失败: {exc.errors()[0]['msg']}")
        for item in page.items:
            known = self.book.orders.get(item.order_no)
            if known is None or known["status"] != "paid":
                return _no("4003", f"退费单 {item.order_no} 未支付，不能销号")
            if known["order"].amount != item.amount:
                return _no("4002", f"退费单 {item.order_no} 金额不符")
        data = {"batch_id": page.batch_id, "page": page.page, "count": page.count,
                "total": f"{page.total:.2f}"}
        self.book.closures[serial] = data
        self.state.log.record(f"closure:{page.batch_id}:{page.page}", entity=page.batch_id,
                              value=page.page)
        await self.state.sleep_for(fault)
        return _ok(data)

    async def payments(self, body: dict[str, Any]) -> JSONResponse:
        fault = self.state.draw("payments", operation="payments")
        early = await self._early(fault)
        if early is not None:
            return early
        try:
            q = PaymentQuery.model_validate(body)
        except ValidationError as exc:
            return _no("4000", str(exc.errors()[0]["msg"]))
        records = [p for p in self.book.payments
                   if p["unit_credit_code"] == q.unit_credit_code
                   and q.start_date <= datetime.fromisoformat(p["paid_at"]).date()
                   <= q.end_date]
        out = [{k: p[k] for k in ("order_no", "finance_no", "account_name", "account_no",
                                  "bank_name", "amount", "paid_at")} for p in records]
        total = sum((Decimal(p["amount"]) for p in out), Decimal("0"))
        await self.state.sleep_for(fault)
        return _ok({"records": out, "count": len(out), "total": f"{total:.2f}"})

    async def _early(self, fault: Fault | None) -> JSONResponse | None:
        if fault is None:
            return None
        if fault.kind == "http_5xx":
            return JSONResponse({"code": "500", "message": "系统繁忙"}, status_code=503)
        if fault.kind == "http_4xx":
            return JSONResponse({"detail": "bad request"}, status_code=400)
        if fault.kind == "reject":
            return _no(fault.code, fault.text)
        return None

    # ------------------------------------------------------------ paying

    def pay(self, order_no: str) -> bool:
        """Pay ``order_no`` now if it is taken and not withdrawn (no await in between: a
        withdrawal cannot slip in); whether a payment (or a bounce) happened."""
        known = self.book.orders.get(order_no)
        if known is None or known["status"] != "accepted" or order_no in self.book.withdrawn:
            return False
        order: RefundOrder = known["order"]
        at = now_beijing().isoformat()
        if order.payee.account_no.endswith("9999"):
            known["status"] = "bounced"
            self._tell(order_no, known, "failed", at, "收款银行退票: 账户状态异常")
            return True
        known["status"], known["paid_at"] = "paid", at
        self.book.payments.append({
            "order_no": order_no, "finance_no": known["finance_no"],
            "unit_credit_code": order.unit_credit_code or "",
            "account_name": order.payee.account_name, "account_no": order.payee.account_no,
            "bank_name": order.payee.bank_name, "amount": f"{order.amount:.2f}", "paid_at": at})
        self.state.log.record(f"pay:{order_no}", entity=order_no, value="pay")
        self._tell(order_no, known, "refunded", at, "")
        return True

    def pay_all(self) -> int:
        return sum(self.pay(n) for n in list(self.book.orders))

    async def _pay_later(self, order_no: str, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        self.pay(order_no)

    def _tell(self, order_no: str, known: dict[str, Any], status: str, at: str,
              reason: str) -> None:
        if not self.callback_url:
            return
        order: RefundOrder = known["order"]
        body = {"order_no": order_no, "version": known["version"], "status": status,
                "refunded": "1" if status == "refunded" else "0",
                "amount": f"{order.amount:.2f}", "finance_no": known["finance_no"],
                "paid_at": at if status == "refunded" else None, "reason": reason}
        fault = self.state.draw(f"callback:{order_no}", operation="callback")
        times = 2 if fault is not None and fault.kind == "duplicate" else 1
        for _ in range(times):
            self._spawn(self._deliver(body))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, body: dict[str, Any]) -> None:
        """Until the hub answers: 2xx done, 4xx refused (kept), else retried with backoff."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=5.0)
        raw = json.dumps(body, ensure_ascii=False).encode()
        for attempt in range(20):
            try:
                r = await self._http.post(self.callback_url, content=raw,
                                          headers={"Content-Type": "application/json"},
                                          auth=SignedAuth(PARTNER, self.callback_secret))
                if r.status_code < 300:
                    return
                if r.status_code < 500:
                    try:
                        answer: Any = r.json()
                    except ValueError:
                        answer = r.text[:200]
                    self.book.refused_callbacks.append(body | {"answer": answer})
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(min(5.0, 0.2 * 2 ** attempt))

    async def drain(self, timeout: float = 10.0) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    async def aclose(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(BaseException):
                await t
        if self._http is not None:
            await self._http.aclose()


def create_app(sim: FinanceSim) -> FastAPI:
    """Finance's REST API under ``/finance`` and the simulator's switches under ``/_sim``."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> Any:
        yield
        await sim.aclose()

    app = FastAPI(title="用友 finance simulator (F10 退费)", lifespan=lifespan)
    app.state.finance = sim
    app.include_router(sim_router(sim.state))

    async def signed(request: Request) -> tuple[dict[str, Any] | None, JSONResponse | None]:
        body = await request.body()
        try:
            await verify_signed("hub", sim.secret, method=request.method,
                                target=request_target(request.scope), headers=request.headers,
                                body=body, nonces=sim.nonces, names=PARTNER_HEADERS,
                                scope="hub")
        except SignatureRefused as exc:
            sim.book.bad_signatures += 1
            return None, JSONResponse({"code": "401", "message": exc.errors[0][1]}, 401)
        try:
            data = json.loads(body)
        except ValueError:
            return None, _no("4000", "body is not JSON")
        if not isinstance(data, dict):
            return None, _no("4000", "body is not an object")
        return data, None

    @app.post("/finance/refund/orders")
    async def orders(request: Request) -> JSONResponse:
        data, refused = await signed(request)
        if refused is not None or data is None:
            return refused or _no("4000", "no body")
        return await sim.submit(data, request.headers.get("x-hub-serial", ""))

    @app.post("/finance/refund/orders/{order_no}/withdraw")
    async def withdraw(order_no: str, request: Request) -> JSONResponse:
        _, refused = await signed(request)
        if refused is not None:
            return refused
        return await sim.withdraw(order_no, request.headers.get("x-hub-serial", ""))

    @app.post("/finance/refund/closures")
    async def closures(request: Request) -> JSONResponse:
        data, refused = await signed(request)
        if refused is not None or data is None:
            return refused or _no("4000", "no body")
        return await sim.closure(data, request.headers.get("x-hub-serial", ""))

    @app.post("/finance/refund/payments/query")
    async def payments(request: Request) -> JSONResponse:
        data, refused = await signed(request)
        if refused is not None or data is None:
            return refused or _no("4000", "no body")
        return await sim.payments(data)

    @app.post("/_sim/finance/pay")
    async def pay_now(order_no: str | None = None) -> dict[str, int]:
        return {"paid": int(sim.pay(order_no)) if order_no else sim.pay_all()}

    @app.get("/_sim/finance/orders/{order_no}")
    async def order_state(order_no: str) -> dict[str, Any]:
        known = sim.book.orders.get(order_no)
        return {"order_no": order_no, "withdrawn": order_no in sim.book.withdrawn,
                "paid": sim.book.paid(order_no),
                "status": known["status"] if known else None,
                "version": known["version"] if known else None}

    return app


async def start_finance(stack: contextlib.AsyncExitStack, s: HubSettings,
                        sims: dict[str, Any]) -> HubSettings:
    """Serve the finance simulator on ``stack``; ``sims["finance"]`` is its ``FinanceSim``;
    the answer points ``partners.erp_finance`` at it (a development secret when none is
    configured) and the simulator's callbacks at the hub (``s.callback_base``)."""
    base = s.partners.get(PARTNER)
    secret = base.secret if base is not None and base.secret.get_secret_value() \
        else SecretStr(f"dev-{PARTNER}-secret")
    sim = FinanceSim(SimState(), secret=secret.get_secret_value(),
                     callback_url=f"{s.callback_base}/partners/{PARTNER}/callback",
                     callback_secret=secret.get_secret_value())
    url = await stack.enter_async_context(serve_app(create_app(sim)))
    sims["finance"] = sim
    cfg = (base or PartnerConfig(protocol="rest", endpoint=url)).model_copy(
        update={"endpoint": f"{url}/finance", "secret": secret})
    return s.model_copy(update={"partners": {**s.partners, PARTNER: cfg}})
