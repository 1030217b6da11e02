"""Issue 15 items 4 and 5 through one real hub (RabbitMQ, Redis, SQLite) and the simulators:

* a W3C ``traceparent`` sent with tax's push to the hub's door reaches the core simulator
  on the hub's outbound call, across the AMQP hop (door -> ``core.tax_push`` lane -> core),
  with the same trace id;
* the access log writes one line per request: the path template, the status, the caller,
  the trace id; never the raw ID or the query string;
* ``GET /asyncapi.json`` lists every lane the hub runs (channel, queue, DLQ, messages),
  ``GET /asyncapi`` renders it, both for readers only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

import httpx
import pytest

from adapters.tax.soap import build_request, parse_reply
from config.settings import load_settings
from contracts.taxcat import op
from kernel.logs import ACCESS_LOGGER, record_fields
from kernel.tracing import TRACEPARENT, parse_traceparent
from simulators.harness import fast_policies, running_stack
from tools.fixtures.generate_catalogue import ROOT

pytestmark = pytest.mark.integration

SOAP = {"Content-Type": "text/xml; charset=utf-8"}
READER = {"Authorization": "Bearer dev-readonly"}


def _special_payment() -> dict[str, Any]:
    data = json.loads((ROOT / "SpecialPaymentNotify.json").read_text(encoding="utf-8"))
    return dict(data["payload"])


async def test_one_trace_from_the_door_to_core_an_access_line_per_request_and_asyncapi(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    s = load_settings()
    trace_id = uuid.uuid4().hex
    incoming = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    async with running_stack(s, overrides=fast_policies(s)) as st, \
            httpx.AsyncClient(timeout=10) as http:
        # -- the trace: tax's push (HTTP) -> core.tax_push lane (AMQP) -> core (HTTP)
        infno = op("SpecialPaymentNotify").core_infno
        push = build_request("SpecialPaymentNotify", _special_payment(),
                             f"PUSH-{uuid.uuid4().hex[:8]}", "TAXSYS")
        r = await http.post(f"{st.hub_url}/partners/tax/callback", content=push,
                            headers={**SOAP, TRACEPARENT: incoming},
                            auth=st.partner_auth("tax"))
        assert r.status_code == 200 and parse_reply(r.content)[0], r.text
        for _ in range(200):
            if any(p["infno"] == infno for p in st.store.pushes.values()):
                break
            await asyncio.sleep(0.05)
        seen = (await http.get(f"{st.core_url}/_sim/traceparents")).json()
        ours = [parse_traceparent(t) for t in seen if parse_traceparent(t)]
        assert any(t[0] == trace_id for t in ours if t), seen  # the same trace at core
        assert all(t[1] != incoming.split("-")[2] for t in ours if t)  # hub spans between

        # -- AsyncAPI: every lane of this hub, readers only
        assert (await http.get(f"{st.hub_url}/asyncapi.json")).status_code == 401
        doc = (await http.get(f"{st.hub_url}/asyncapi.json", headers=READER)).json()
        assert doc["asyncapi"] == "3.0.0"
        addresses = {ch["address"] for ch in doc["channels"].values()}
        for route in st.hub.routes:
            assert st.hub.names.queue(route.name) in addresses, route.name
            assert st.hub.names.dlq(route.name) in addresses, route.name
            assert set(route.bindings) <= set(doc["components"]["messages"]), route.name
            assert f"consume.{route.name}" in doc["operations"]
        page = await http.get(f"{st.hub_url}/asyncapi", headers=READER)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert all(f"<code>{st.hub.names.queue(r.name)}</code>" in page.text
                   for r in st.hub.routes)

        person = next(iter(st.store.persons.values())).id_number
        r = await http.get(f"{st.hub_url}/transactions?person={person}", headers=READER)
        assert r.status_code == 200

    lines = [record_fields(rec) for rec in caplog.records if rec.name == ACCESS_LOGGER]
    door = [ln for ln in lines if ln["path"] == "/partners/tax/callback"]
    assert len(door) == 1 and door[0]["status"] == 200 and door[0]["caller"] == "tax"
    assert door[0]["trace_id"] == trace_id and door[0]["method"] == "POST"
    docs = [ln for ln in lines if ln["path"] == "/asyncapi.json"]
    assert [d["status"] for d in docs] == [401, 200]
    assert (docs[1]["user"], docs[1]["role"]) == ("dev-readonly", "readonly")
    assert "user" not in docs[0]
    search = [ln for ln in lines if ln["path"] == "/transactions"]
    assert len(search) == 1 and search[0]["status"] == 200
    assert person not in str(lines) and "person=" not in str(lines)
