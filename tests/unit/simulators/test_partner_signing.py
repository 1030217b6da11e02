"""The simulators sign what they send the hub as their partner: tax's FeedbackNotify
callbacks (a fresh signature on every retry) and core's H2101 events."""

from __future__ import annotations

import httpx

from adapters.signing import MemoryNonceStore, verify_signed
from adapters.tax import soap
from adapters.tax.client import LeanTaxClient
from contracts.employee import EmployeeEnrollment
from contracts.signing import PARTNER_HEADERS
from simulators.core import CoreStore, emit_enrollments
from simulators.simkit import SimState
from simulators.tax import CallbackRetry, create_app

TAX_SECRET = "tax-secret-0123456789"
CORE_SECRET = "core-secret-0123456789"
FIXTURES = soap.TAX_XSD.parents[1] / "fixtures" / "tax" / "employee_enroll"


async def _check(request: httpx.Request, partner: str, secret: str,
                 nonces: MemoryNonceStore) -> None:
    await verify_signed(partner, secret, method=request.method,
                        target=request.url.raw_path.decode(), headers=request.headers,
                        body=request.content, nonces=nonces, names=PARTNER_HEADERS)


async def test_tax_signs_each_feedback_callback_afresh() -> None:
    calls: list[httpx.Request] = []

    def hub(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:  # the first try is lost: tax must try again, signed again
            return httpx.Response(503)
        return httpx.Response(200, content=soap.build_feedback_reply(True, "ok"))

    app = create_app(SimState(), callback_url="http://hub.test/partners/tax/callback?v=1",
                     callback_secret=TAX_SECRET, feedback_delay_s=0,
                     callback_retry=CallbackRetry(first_delay_s=0.001),
                     callback_transport=httpx.MockTransport(hub))
    client = LeanTaxClient("http://tax.test/tax/ws", timeout=2.0,
                           transport=httpx.ASGITransport(app=app))
    enrollment = EmployeeEnrollment.model_validate_json(
        (FIXTURES / "001_ok.input.json").read_text(encoding="utf-8"))
    try:
        await client.enroll_employee(enrollment, serial="SER-SIGN-1")
        await app.state.tax.drain()
    finally:
        await client.aclose()
        await app.state.tax.aclose()
    assert len(calls) == 2
    nonces = MemoryNonceStore()
    for request in calls:
        assert request.headers["x-partner"] == "tax"
        await _check(request, "tax", TAX_SECRET, nonces)  # each its own nonce
    assert calls[0].headers["x-partner-nonce"] != calls[1].headers["x-partner-nonce"]


async def test_core_signs_the_events_it_emits() -> None:
    seen: list[httpx.Request] = []

    def hub(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"infcode": 0})

    store = CoreStore.seed(1, 3, rng_seed=7)
    async with httpx.AsyncClient(transport=httpx.MockTransport(hub)) as http:
        await emit_enrollments("http://hub.test", store, 3, client=http, secret=CORE_SECRET)
    nonces = MemoryNonceStore()
    for request in seen:
        assert request.url.path == "/partners/core/events"
        await _check(request, "core", CORE_SECRET, nonces)
    assert len(seen) == 3
