"""The access log and HTTP tracing middleware (api.access_log) on a small app."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException

from api.access_log import AccessLog, path_template
from api.auth import Authenticator, Principal, hash_token
from kernel.logs import ACCESS_LOGGER, record_fields
from kernel.tracing import TRACEPARENT, current_ids, inject

ID = "320102199005170017"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING = f"00-{TRACE}-00f067aa0ba902b7-01"


def _app() -> FastAPI:
    app = FastAPI()
    app.state.api = SimpleNamespace(auth=Authenticator(
        {hash_token("tok-alice"): Principal("alice", "caseworker")}, None))

    @app.get("/people/{person_id}")
    async def person(person_id: str) -> dict[str, Any]:
        trace_id, _ = current_ids()
        return {"trace_id": trace_id, "outbound": inject({})}

    @app.post("/partners/core/events")
    async def door() -> dict[str, str]:
        raise HTTPException(401, "bad signature")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("bug")

    app.add_middleware(AccessLog)
    return app


@pytest.fixture
def http() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://hub")


def _lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [record_fields(r) for r in caplog.records if r.name == ACCESS_LOGGER]


async def test_one_line_per_request_with_the_template_not_the_ids_nor_the_query(
        http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    async with http:
        r = await http.get(f"/people/{ID}?person={ID}",
                           headers={"Authorization": "Bearer tok-alice"})
        assert r.status_code == 200
        await http.get("/nowhere/" + ID)
    first, unmatched = _lines(caplog)
    assert ID not in str(first) and ID not in str(unmatched)
    assert (first["method"], first["path"], first["status"]) == ("GET", "/people/{person_id}",
                                                                 200)
    assert first["msg"] == "GET /people/{person_id} 200"
    assert (first["user"], first["role"]) == ("alice", "caseworker")
    assert isinstance(first["duration_ms"], float) and first["duration_ms"] >= 0
    assert first["trace_id"] == r.json()["trace_id"]  # the line names the request's trace
    assert (unmatched["path"], unmatched["status"]) == ("<unmatched>", 404)
    assert "user" not in unmatched


async def test_an_incoming_traceparent_is_continued_and_passed_on(
        http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    async with http:
        r = await http.get("/people/x", headers={TRACEPARENT: INCOMING})
    assert r.json()["trace_id"] == TRACE
    assert r.json()["outbound"][TRACEPARENT].split("-")[1] == TRACE
    [line] = _lines(caplog)
    assert line["trace_id"] == TRACE


async def test_refusals_and_crashes_are_logged_with_their_status_and_no_caller(
        http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    async with http:
        assert (await http.post("/partners/core/events",
                                headers={"X-Partner": "core"})).status_code == 401
        assert (await http.get("/boom",
                               headers={"Authorization": "Bearer wrong"})).status_code == 500
    refused, crashed = _lines(caplog)
    assert (refused["path"], refused["status"]) == ("/partners/core/events", 401)
    assert "caller" not in refused  # a partner refused 401 is not named as the caller
    assert (crashed["path"], crashed["status"]) == ("/boom", 500) and "user" not in crashed


def test_a_signed_partner_is_named_and_a_mount_is_its_prefix() -> None:
    from starlette.routing import Mount

    from api.access_log import _caller

    assert _caller({}, {"x-partner": "tax"}, 200) == {"caller": "tax"}
    assert path_template({"route": Mount("/console/static", app=FastAPI())}) == \
        "/console/static/{path}"
    assert path_template({}) == "<unmatched>"
