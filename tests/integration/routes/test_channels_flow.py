"""F1 end to end on real servers: every application type, from each channel that may send
it, through the hub to core and tax and back to the channel's callback (counted there)."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import date
from typing import Any

import httpx
import pytest

from config.settings import load_settings
from contracts.channels import APPLICATION_TYPES, CHANNEL_TYPES
from contracts.ids import People
from simulators.channels import submit
from simulators.core import CoreStore
from simulators.harness import fast_policies, running_stack
from simulators.simkit import Fault
from tools.fixtures.generate_channels import ROOT

pytestmark = pytest.mark.integration

FINAL = ("completed", "rejected")


def fixture(app_type: str) -> dict[str, Any]:
    return json.loads((ROOT / f"{app_type}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _stack(**kw: Any) -> Any:
    s = load_settings()
    store = CoreStore.seed(2, 4, rng_seed=random.randrange(10**9))
    return running_stack(s, store=store, overrides=fast_policies(s) | kw)


async def status(http: httpx.AsyncClient, st: Any, channel: str, app_id: str) -> dict[str, Any]:
    from adapters.channels.auth import signed_headers
    cfg = st.settings.channels[channel]
    target = f"/channels/{channel}/applications/{app_id}"
    r = await http.get(f"{st.hub_url}{target}", headers=signed_headers(
        cfg.secret.get_secret_value(), b"", method="GET", target=target, channel=channel))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def until_status(http: httpx.AsyncClient, st: Any, channel: str, app_id: str,
                       want: str, timeout: float = 20) -> dict[str, Any]:
    got: dict[str, Any] = {}
    for _ in range(int(timeout / 0.05)):
        got = await status(http, st, channel, app_id)
        if got["status"] == want:
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"{channel} {app_id} never {want}: {got}")


async def until_final(http: httpx.AsyncClient, st: Any, channel: str, app_id: str,
                      timeout: float = 20, review: bool = True) -> dict[str, Any]:
    """Wait for the final result; core's caseworkers approve whatever waits for review."""
    got: dict[str, Any] = {}
    for _ in range(int(timeout / 0.05)):
        if review:
            await st.review_pending(http)
        got = await status(http, st, channel, app_id)
        if got["status"] in FINAL and app_id in st.inbox.results:
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"{channel} {app_id} not final: {got}")


async def test_every_application_type_from_every_channel_reaches_a_final_result() -> None:
    async with _stack() as st, httpx.AsyncClient(timeout=10) as http:
        sent: list[tuple[str, str, str]] = []
        for channel, types in CHANNEL_TYPES.items():
            cfg = st.settings.channels[channel]
            for app_type in types:
                body = fixture(app_type)
                r = await submit(http, st.hub_url, channel, cfg, app_type,
                                 f"{channel}-{body['request_id']}", body["payload"])
                assert r.status_code == 202, (channel, app_type, r.text)
                sent.append((channel, app_type, r.json()["application_id"]))
        assert {t for _, t, _ in sent} == set(APPLICATION_TYPES)
        outcomes = {}
        for channel, app_type, app_id in sent:
            final = await until_final(http, st, channel, app_id)
            result = st.inbox.results[app_id]
            assert result["_channel"] == channel and result["status"] == final["status"]
            if final["status"] == "rejected":
                assert result["reason"] and final["reason"], (app_type, final)
            outcomes[(channel, app_type)] = (final["status"], result["reason_code"])
        # one callback per application, counted at the channels; each registered once at core
        summary = st.channel_state.log.summary()
        assert summary["effects"] == len(sent) and summary["duplicates"] == {}
        assert 0 < len(st.store.applications) <= len(sent)  # refused ones never reach core
        # the same fixture person from several channels is synced several times on purpose;
        # what must never repeat is a registration of one application
        dups = st.core_state.log.summary()["duplicates"]
        assert not [k for k in dups if k.startswith("H2501")], dups
        assert st.inbox.bad_signatures == 0
        print({f"{c}/{t}": (o, r) for (c, t), (o, r) in outcomes.items()})
        assert outcomes[("my_nanjing", "resident_enroll")][0] == "completed"
        # the same fixture person again from 网厅: tax says already enrolled this year
        assert outcomes[("online_hall", "resident_enroll")] == ("rejected", "TX502")


async def test_a_duplicate_request_id_returns_the_first_application() -> None:
    async with _stack() as st, httpx.AsyncClient(timeout=10) as http:
        cfg = st.settings.channels["my_nanjing"]
        body = fixture("resident_enroll")
        first = await submit(http, st.hub_url, "my_nanjing", cfg, "resident_enroll", "DUP-1",
                             body["payload"])
        again = await submit(http, st.hub_url, "my_nanjing", cfg, "resident_enroll", "DUP-1",
                             body["payload"])
        assert first.status_code == 202 and again.status_code == 200
        assert again.json()["application_id"] == first.json()["application_id"]
        await until_final(http, st, "my_nanjing", first.json()["application_id"])
        assert st.tax_state.log.summary()["effects"] == 1 and len(st.store.applications) == 1


async def test_arrears_refuse_a_transfer_out_with_the_reason() -> None:
    async with _stack() as st, httpx.AsyncClient(timeout=10) as http:
        body = fixture("transfer_out")
        cfg = st.settings.channels["my_nanjing"]
        book = st.tax_sim.book
        book.arrears[body["payload"]["id_number"]] = 123_456
        r = await submit(http, st.hub_url, "my_nanjing", cfg, "transfer_out", "ARR-1",
                         body["payload"])
        final = await until_final(http, st, "my_nanjing", r.json()["application_id"])
        assert final["status"] == "rejected" and "1234.56" in final["reason"]
        assert final["reason_field"] == "payload.id_number"
        assert st.tax_state.log.summary()["effects"] == 0  # nothing reached tax


async def test_a_transfer_out_needs_an_enrollment_and_no_pending_business_at_the_destination(
        ) -> None:
    """Seed 1841/2526: core (the 医保信息平台) says what the 转入地 holds; a refusal goes back
    to 我的南京 naming the field, and nothing reaches tax."""
    async with _stack() as st, httpx.AsyncClient(timeout=10) as http:
        cfg = st.settings.channels["my_nanjing"]
        base = fixture("transfer_out")["payload"]
        made = People()
        people = [made.new(born=date(1985, 6, 1), area="320102") for _ in range(3)]
        for who in people:  # 10 % of IDs owe at tax by default: these owe nothing
            st.tax_sim.book.arrears[who] = 0
        st.store.transfer_uninsured.add(people[1])
        st.store.transfer_pending.add(people[2])
        finals = []
        for i, who in enumerate(people):
            r = await submit(http, st.hub_url, "my_nanjing", cfg, "transfer_out", f"TR-{i}",
                             base | {"id_number": who})
            assert r.status_code == 202, r.text
            finals.append(await until_final(http, st, "my_nanjing", r.json()["application_id"]))
        assert [f["status"] for f in finals] == ["completed", "rejected", "rejected"], finals
        assert {f["reason_field"] for f in finals[1:]} == {"payload.target_division"}
        assert "holds no normal enrollment" in finals[1]["reason"]
        assert "pending" in finals[2]["reason"]
        pushed = [st.inbox.results[f["application_id"]]["status"] for f in finals]
        assert pushed == ["completed", "rejected", "rejected"]  # counted at 我的南京
        assert st.tax_state.log.summary()["effects"] == 1  # only the ready one's EmployeeStop
        assert st.tax_sim.book.persons[("employee", people[0])]["status"] == "stopped"


async def test_retirement_and_unit_changes_reach_tax_only_after_cores_review() -> None:
    """Seed 1679/2126 (在职转退休: 人员复核 or 年限补缴审核, then 同步至税务) and 2070 (网厅单位
    信息维护: 待审核后 … 同步至税务): registered at core, nothing at tax until core's verdict."""
    async with _stack() as st, httpx.AsyncClient(timeout=10) as http:
        retire = fixture("retire")["payload"]
        unit = fixture("unit_maintain")["payload"]
        st.store.years_short.add(retire["id_number"])
        r1 = await submit(http, st.hub_url, "hrss", st.settings.channels["hrss"], "retire",
                          "REV-1", retire)
        r2 = await submit(http, st.hub_url, "online_hall", st.settings.channels["online_hall"],
                          "unit_maintain", "REV-2", unit)
        assert r1.status_code == r2.status_code == 202, (r1.text, r2.text)
        a1, a2 = r1.json()["application_id"], r2.json()["application_id"]
        await until_status(http, st, "hrss", a1, "awaiting_review")
        await until_status(http, st, "online_hall", a2, "awaiting_review")
        await asyncio.sleep(0.5)  # nothing is on its way to tax meanwhile
        assert st.tax_state.log.summary()["effects"] == 0
        assert not {a1, a2} & set(st.inbox.results)
        # core: the retirement passes 年限补缴审核; the unit's change is refused
        [retire_app] = [a for a in st.store.awaiting_review() if a["application_id"] == a1]
        [unit_app] = [a for a in st.store.awaiting_review() if a["application_id"] == a2]
        approve = st.store.review_request(retire_app, approved=True)
        assert approve["input"]["data"]["review_kind"] == "years_backpay_review"
        refuse = st.store.review_request(unit_app, approved=False, reason="单位注册材料不全",
                                         seq=1)
        for body in (approve, refuse, approve):  # core sends the approval twice
            r = await http.post(f"{st.hub_url}/partners/core/events", json=body,
                                auth=st.partner_auth("core"))
            assert r.status_code == 200, r.text
        done = await until_final(http, st, "hrss", a1, review=False)
        refused = await until_final(http, st, "online_hall", a2, review=False)
        assert done["status"] == "completed", done
        assert (refused["status"], st.inbox.results[a2]["reason_code"]) == (
            "rejected", "CORE_REVIEW_REFUSED")
        assert "单位注册材料不全" in st.inbox.results[a2]["reason"]
        summary = st.tax_state.log.summary()
        assert summary["effects"] == 1 and not summary["duplicates"], summary  # the retirement
        assert st.tax_sim.book.persons[("employee", retire["id_number"])]["status"] == "retired"
        # a review without its reason is refused naming the field; nothing changes
        bad = st.store.review_request(unit_app, approved=False, seq=2)
        r = await http.post(f"{st.hub_url}/partners/core/events", json=bad,
                            auth=st.partner_auth("core"))
        assert r.status_code == 422 and "data" in r.text, r.text


async def test_a_channel_that_stays_down_gets_its_result_dead_lettered_then_redriven() -> None:
    async with _stack() as st, httpx.AsyncClient(timeout=10) as http:
        st.channel_state.faults[:] = [Fault(kind="http_5xx", operation="gov_office")]
        cfg = st.settings.channels["gov_office"]
        body = fixture("veteran_enroll")
        r = await submit(http, st.hub_url, "gov_office", cfg, "veteran_enroll", "DOWN-1",
                         body["payload"])
        app_id = r.json()["application_id"]
        for _ in range(200):
            counts = await st.hub.deps.journal.status_counts()
            parked = await _parked(st)
            if parked:
                break
            await asyncio.sleep(0.1)
        assert parked == 1, counts
        assert app_id not in st.inbox.results
        # the channel comes back; operations re-drive the dead letter
        st.channel_state.faults.clear()
        ops = {"Authorization": "Bearer dev-ops"}
        r = await http.post(f"{st.hub_url}/admin/dead-letters/retry", headers=ops,
                            json={"all": True, "reason": "渠道恢复, 重推结果"})
        assert r.status_code in (200, 202), r.text
        final = await until_final(http, st, "gov_office", app_id)
        assert final["status"] in FINAL and st.inbox.results[app_id]["status"]


async def _parked(st: Any) -> int:
    from storage.deadletters import DeadLetterFilter, DeadLetterStore
    rows = await DeadLetterStore(st.hub.deps.journal.engine).list(
        DeadLetterFilter(partner="channel.gov_office"))
    return len(rows)


async def test_a_channel_may_submit_over_amqp_with_the_same_contract() -> None:
    import aio_pika

    from adapters.channels.auth import applications_target, signed_headers

    async with _stack() as st, httpx.AsyncClient(timeout=10) as http:
        cfg = st.settings.channels["online_hall"]
        body = fixture("flexible_enroll")
        raw = json.dumps({"type": "flexible_enroll", "request_id": "AMQP-1",
                          "payload": body["payload"]}, ensure_ascii=False).encode()
        bad = json.dumps({"type": "newborn_enroll", "request_id": "AMQP-2",
                          "payload": fixture("newborn_enroll")["payload"]}).encode()
        conn = await aio_pika.connect_robust(st.settings.amqp_url)
        async with conn:
            ch = await conn.channel()
            replies = await ch.declare_queue(exclusive=True)
            ex = await ch.get_exchange(f"{st.settings.namespace}.channels")
            for n, payload in enumerate((raw, bad)):
                await ex.publish(aio_pika.Message(
                    payload, headers=signed_headers(
                        cfg.secret.get_secret_value(), payload, method="POST",
                        target=applications_target("online_hall"), channel="online_hall"),
                    reply_to=replies.name, correlation_id=f"c{n}"), routing_key="online_hall")
            answers = {}
            async with replies.iterator() as it:
                async for m in it:
                    async with m.process():
                        answers[m.correlation_id] = json.loads(m.body)
                    if len(answers) == 2:
                        break
        assert answers["c0"]["status"] == 202, answers
        assert answers["c1"]["status"] == 403  # online_hall may not submit newborns
        app_id = answers["c0"]["body"]["application_id"]
        final = await until_final(http, st, "online_hall", app_id)
        assert final["status"] in FINAL and st.inbox.results[app_id]["_channel"] == "online_hall"


async def test_every_bad_input_is_refused_by_the_real_hub_and_nothing_is_enrolled() -> None:
    """The unit suite's 45 bad requests, now against the running hub (real Redis nonces,
    real broker, real database): each a 4xx naming its field; nothing stored or sent."""
    from tests.unit.api.test_channels_api import BAD, MAX_BODY, _settings
    from tests.unit.api.test_channels_api import fields as named

    async with _stack(channels=_settings().channels, max_body_bytes=MAX_BODY) as st, \
            httpx.AsyncClient(timeout=10) as http:
        for name, case in BAD.items():
            body = case.body()
            headers = case.make_headers(body)
            if case.replay:
                assert await st.hub.deps.nonces.seen(case.channel, headers["X-Channel-Nonce"],
                                                     600) is False
            if case.content_type is not None:
                headers["Content-Type"] = case.content_type
            r = await http.post(f"{st.hub_url}/channels/{case.channel}/applications",
                                content=body, headers=headers)
            assert r.status_code == case.status, (name, r.text)
            assert case.field in named(r), (name, r.text)
        await asyncio.sleep(0.5)
        assert await st.hub.deps.applications.count() == 0  # type: ignore[union-attr]
        assert st.store.applications == {} and st.tax_state.log.summary()["effects"] == 0
        assert st.inbox.results == {}
