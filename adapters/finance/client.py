"""``FinancePort`` over 用友's REST open API: signed JSON, ``{code, message, data}`` answers.

用友 NC Cloud / YonBIP open APIs are REST with JSON bodies and a signature over the
request (app key + timestamp + HMAC); the hub uses its one HMAC scheme for that
(``contracts.signing``, ``X-Partner-*`` headers, signed as ``hub`` with
``partners.erp_finance.secret``), so finance verifies the hub as the hub verifies
finance's callbacks. ``X-Hub-Serial`` is the serial finance deduplicates on. Every
answer is ``{"code": "200", "message": ..., "data": {...}}``; another code is a business
refusal. Paths under ``partners.erp_finance.endpoint``:

    POST /refund/orders                      an order (a version of it)
    POST /refund/orders/{order_no}/withdraw  退费回退
    POST /refund/closures                    a page of a 旬 销号 batch
    POST /refund/payments/query              payments to a unit (网办大厅)

Errors are mapped here, at the boundary:

    timeout                              -> PartnerTimeout
    connection errors, 5xx, 408, 429     -> PartnerUnavailable   (retried, then DLQ)
    an answer that is not the protocol   -> PartnerUnavailable   (the serial makes a retry safe)
    code other than 200                  -> BusinessRejected     (finance's code and message)
    other 4xx                            -> ClientError          (refused: not retried)
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from adapters.http import bounded_client
from adapters.signing import SignedAuth
from config.settings import PartnerConfig
from contracts.errors import BusinessRejected, ClientError, PartnerTimeout, PartnerUnavailable
from contracts.finance import (
    PARTNER,
    OrderAnswer,
    PaymentQuery,
    PaymentsAnswer,
    WithdrawAnswer,
    check_total,
)

if TYPE_CHECKING:
    from adapters.finance.port import FinancePort

__all__ = ["SIGNER", "FinanceClient"]

SIGNER = "hub"
OK = "200"
M = TypeVar("M", bound=BaseModel)


class FinanceClient:
    """One HTTP client for 用友 finance."""

    def __init__(self, config: PartnerConfig, *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._config = config
        self._base = config.endpoint.rstrip("/")
        self._http = bounded_client(limit=32, timeout=httpx.Timeout(config.timeout_s),
                                    transport=transport)

    async def submit_order(self, order: dict[str, Any], *, serial: str) -> OrderAnswer:
        return _model(OrderAnswer, await self._post("/refund/orders", order, serial))

    async def withdraw(self, order_no: str, version: int, reason: str, *,
                       serial: str) -> WithdrawAnswer:
        return _model(WithdrawAnswer, await self._post(
            f"/refund/orders/{order_no}/withdraw",
            {"order_no": order_no, "version": version, "reason": reason}, serial))

    async def send_closure(self, page: dict[str, Any], *, serial: str) -> dict[str, Any]:
        return await self._post("/refund/closures", page, serial)

    async def payments(self, query: PaymentQuery) -> PaymentsAnswer:
        data = await self._post("/refund/payments/query", query.model_dump(mode="json"), "")
        answer = _model(PaymentsAnswer, data)
        try:  # finance's own total must add up before anyone is shown it
            check_total((r.amount for r in answer.records), answer.total, answer.count)
        except Exception as exc:
            raise PartnerUnavailable(f"{PARTNER}'s payment details do not add up: {exc}",
                                     partner=PARTNER) from None
        return answer

    async def _post(self, path: str, payload: dict[str, Any], serial: str) -> dict[str, Any]:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if serial:
            headers["X-Hub-Serial"] = serial
        auth = SignedAuth(SIGNER, self._config.secret.get_secret_value())
        try:
            r = await self._http.post(f"{self._base}{path}", content=body, headers=headers,
                                      auth=auth)
        except httpx.TimeoutException as exc:
            raise PartnerTimeout(f"{PARTNER} did not answer within {self._config.timeout_s}s",
                                 partner=PARTNER) from exc
        except httpx.HTTPError as exc:
            raise PartnerUnavailable(f"{PARTNER} unreachable: {type(exc).__name__}: {exc}",
                                     partner=PARTNER) from exc
        if r.status_code >= 500 or r.status_code in (408, 429):
            raise PartnerUnavailable(f"{PARTNER} answered HTTP {r.status_code}",
                                     partner=PARTNER)
        try:
            answer = r.json()
        except ValueError:
            answer = None
        if r.status_code >= 300 and not (isinstance(answer, dict) and answer.get("code")):
            raise ClientError(f"{PARTNER} refused it: HTTP {r.status_code} {r.text[:200]}",
                              partner=PARTNER)
        if not isinstance(answer, dict) or "code" not in answer:
            raise PartnerUnavailable(f"{PARTNER} answered something that is not "
                                     "{code, message, data}", partner=PARTNER)
        if str(answer["code"]) != OK:
            raise BusinessRejected(str(answer["code"]), str(answer.get("message") or ""),
                                   partner=PARTNER)
        data = answer.get("data")
        return data if isinstance(data, dict) else {}

    async def aclose(self) -> None:
        await self._http.aclose()


def _model(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PartnerUnavailable(f"{PARTNER}'s answer is not a {model.__name__}: "
                                 f"{exc.errors()[0]['msg']}", partner=PARTNER) from None


if TYPE_CHECKING:
    _conforms: type[FinancePort] = FinanceClient
