"""The union's notice client (``adapters.union.client``) signs each notice and maps answers
to the error tree; the ``union.notify`` handler sends with the stable partner serial."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from adapters.union.client import UnionClient
from contracts.errors import ClientError, PartnerUnavailable
from contracts.messages import partner_serial
from contracts.signing import PARTNER_HEADERS
from contracts.union import Notice, notice_message
from routes.union import deliver_notice


def _client(status: int, seen: list[httpx.Request]) -> UnionClient:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json={"code": 0})
    return UnionClient("http://union.test", "s3cret", transport=httpx.MockTransport(answer))


async def test_a_notice_is_signed_and_carries_its_serial() -> None:
    seen: list[httpx.Request] = []
    client = _client(200, seen)
    await client.deliver({"kind": "acceptance"}, serial="abc")
    (req,) = seen
    assert req.url.path == "/union/notices" and req.headers["X-Hub-Serial"] == "abc"
    assert req.headers[PARTNER_HEADERS.caller or ""] == "trade_union"
    assert len(req.headers[PARTNER_HEADERS.signature]) == 64
    assert json.loads(req.content) == {"kind": "acceptance"}
    await client.aclose()


@pytest.mark.parametrize(("status", "error"), [(503, PartnerUnavailable),
                                               (429, PartnerUnavailable), (400, ClientError)])
async def test_answers_map_to_the_error_tree(status: int, error: type[Exception]) -> None:
    client = _client(status, [])
    with pytest.raises(error):
        await client.deliver({}, serial="x")
    await client.aclose()


@dataclass
class _Recorder:
    calls: list[tuple[dict[str, Any], str]] = field(default_factory=list)

    async def deliver(self, notice: dict[str, Any], *, serial: str) -> None:
        self.calls.append((notice, serial))

    async def aclose(self) -> None:
        return None


@dataclass
class _Deps:
    union_client: Any


async def test_the_lane_delivers_with_the_partner_serial() -> None:
    msg = notice_message(Notice(kind="closure", case_no="UC2025000001", recipient="city_union",
                                unit_code="U0001", decision="给付", at="2025-10-10T10:00:00"),
                         case_id="c1")
    rec = _Recorder()
    out = await deliver_notice(msg, _Deps(rec))
    assert rec.calls == [(dict(msg.payload), partner_serial(msg))]
    assert out.txn is not None and out.txn.status == "delivered"
    with pytest.raises(ClientError):
        await deliver_notice(msg, _Deps(None))
