"""``api.body``: bodies are cut off at the limit however they arrive, JSON depth is
bounded without recursion, and refusals never quote the body."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.body import BodyRefused, json_too_deep, parse_json, read_body

LIMIT = 1024


def _app() -> FastAPI:
    app = FastAPI()

    @app.post("/b")
    async def take(request: Request) -> JSONResponse:
        try:
            body = await read_body(request, LIMIT)
        except BodyRefused as exc:
            return JSONResponse({"field": exc.field, "reason": exc.reason}, exc.status)
        return JSONResponse({"size": len(body)})

    return app


async def _post(**kw: object) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()),
                                 base_url="http://t") as http:
        return await http.post("/b", **kw)  # type: ignore[arg-type]


async def test_a_body_within_the_limit_is_read_whole() -> None:
    assert (await _post(content=b"x" * LIMIT)).json() == {"size": LIMIT}


async def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    r = await _post(content=b"x" * (LIMIT + 1))
    assert r.status_code == 413 and r.json()["field"] == "body"
    assert "1025 bytes" in r.json()["reason"]


async def test_a_stream_without_a_length_is_cut_off_at_the_limit() -> None:
    pulled = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pulled
        while True:
            pulled += 1
            yield b"x" * 100

    r = await _post(content=endless())
    assert r.status_code == 413 and pulled <= LIMIT // 100 + 3  # stopped, not drained


async def test_a_bad_content_length_is_400() -> None:
    r = await _post(content=b"{}", headers={"Content-Length": "two"})
    assert r.status_code == 400 and r.json()["field"] == "Content-Length"


@pytest.mark.parametrize(("text", "deep"), [
    (b"[" * 32 + b"]" * 32, False),
    (b"[" * 33 + b"]" * 33, True),
    (b'{"a": "' + b"[{" * 100 + b'"}', False),  # brackets in strings do not count
    (b'{"a": "\\"' + b"[" * 100 + b'"}', False),  # nor after an escaped quote
    (b"[]" * 10_000, False),  # many, but flat
    (b'{"a": {"b": [' + b"{}," * 40 + b"{}]}}", False),
], ids=["32", "33", "in-string", "escaped-quote", "flat", "wide"])
def test_json_depth_is_measured_without_recursion(text: bytes, deep: bool) -> None:
    assert json_too_deep(text) is deep


@pytest.mark.parametrize(("text", "status"), [
    (b"[" * 100_000, 422),
    (b'{"a": ' * 5_000 + b"1" + b"}" * 5_000, 422),
    (b"[1, 2]", 400),
    (b'{"a": NaN}', 400),
    (b'{"a": "\xff"}', 400),
    (b'{"a": 1', 400),
])
def test_parse_json_refuses_naming_the_body(text: bytes, status: int) -> None:
    with pytest.raises(BodyRefused) as e:
        parse_json(text)
    assert (e.value.status, e.value.field) == (status, "body")


def test_a_refusal_does_not_quote_the_body() -> None:
    with pytest.raises(BodyRefused) as e:
        parse_json(b'{"id_number": "320102198001011234", oops}')
    assert "320102198001011234" not in e.value.reason
