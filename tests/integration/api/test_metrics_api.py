"""/metrics and /admin/live on the real hub: after a real F2 flow (core -> tax -> core),
the scrape shows the flow's deliveries, its partner calls, each route's queue and the
tickers; any role token or the metrics token may scrape, no token is 401."""

from __future__ import annotations

import random

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.core.translate import enrollment_to_event
from config.settings import load_settings
from contracts.national import NationalRequest, make_msgid, now_cst
from simulators.core import CoreStore
from simulators.harness import fast_policies, running_stack, wait_until_settled

pytestmark = pytest.mark.integration

READER = {"Authorization": "Bearer dev-readonly"}


def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value)
            for fam in text_string_to_metric_families(text) for s in fam.samples]


def _value(samples: list[tuple[str, dict[str, str], float]], name: str,
           **labels: str) -> float:
    return sum(v for n, lab, v in samples
               if n == name and all(lab.get(k) == want for k, want in labels.items()))


async def test_a_flow_shows_in_metrics_and_live_state_and_scrapes_authenticate() -> None:
    s = load_settings()
    store = CoreStore.seed(1, 2, rng_seed=random.randrange(10**9))
    async with running_stack(s, store=store, overrides=fast_policies(s)) as st, \
            httpx.AsyncClient(timeout=10) as http:
        person = next(iter(store.persons.values()))
        req = NationalRequest(infno="H2101", msgid=make_msgid("NJYBCORE0001", now_cst(), 0),
                              input={"data": enrollment_to_event(person)})
        r = await http.post(f"{st.hub_url}/partners/core/events", auth=st.partner_auth("core"),
                            json=req.model_dump(mode="json", exclude_none=True))
        assert r.status_code == 200, r.text
        assert await wait_until_settled(st, 1, timeout=20) == {"delivered": 1}

        assert (await http.get(f"{st.hub_url}/metrics")).status_code == 401
        bad = await http.get(f"{st.hub_url}/metrics", headers={"Authorization": "Bearer x"})
        assert bad.status_code == 401
        token = st.settings.metrics_token.get_secret_value()
        by_token = await http.get(f"{st.hub_url}/metrics",
                                  headers={"Authorization": f"Bearer {token}"})
        assert by_token.status_code == 200, by_token.text
        r = await http.get(f"{st.hub_url}/metrics", headers=READER)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        samples = _samples(r.text)
        assert _value(samples, "hub_messages_total", route="tax.employee",
                      outcome="delivered") >= 1
        assert _value(samples, "hub_messages_total", route="core.sync", outcome="delivered") >= 1
        assert _value(samples, "hub_partner_call_seconds_count", partner="tax") >= 1
        assert _value(samples, "hub_partner_call_seconds_count", partner="core") >= 1
        depth = {lab["route"] for n, lab, _ in samples if n == "hub_queue_depth"}
        assert {"tax.employee", "core.sync", "union.notify"} <= depth
        assert _value(samples, "hub_queue_consumers", route="tax.employee") >= 1
        assert _value(samples, "hub_up", dependency="broker") == 1
        assert _value(samples, "hub_up", dependency="database") == 1
        assert _value(samples, "hub_dead_letters", route="tax.employee") == 0
        assert _value(samples, "hub_ticker_last_run_timestamp", ticker="union-clock") > 0
        assert {lab["state"] for n, lab, _ in samples if n == "hub_deadlines"} == {"near", "past"}
        assert _value(samples, "hub_http_requests_total",
                      path_template="/partners/core/events", status="200") == 1
        assert all(n.startswith("hub_") for n, _, _ in samples)

        assert (await http.get(f"{st.hub_url}/admin/live")).status_code == 401
        live = await http.get(f"{st.hub_url}/admin/live", headers=READER)
        assert live.status_code == 200, live.text
        body = live.json()
        routes = {r["route"]: r for r in body["routes"]}
        assert routes["tax.employee"]["consumers"] >= 1
        assert routes["tax.employee"]["delivered_per_s"] > 0
        assert body["up"] == {"broker": True, "database": True}
        ticker = next(t for t in body["tickers"] if t["name"] == "union-clock")
        assert ticker["last_run"] and ticker["next_due"] > ticker["last_run"]
