"""F2 职工参保登记 end to end on real RabbitMQ, Redis, SQLite and simulators over sockets."""

from __future__ import annotations

import asyncio
import json
import random

import aio_pika
import httpx
import pytest

from adapters.core.translate import enrollment_to_event
from config.settings import load_settings
from contracts.national import NationalRequest, make_msgid, now_cst
from simulators.core import CoreStore
from simulators.harness import Stack, fast_policies, running_stack, wait_until_settled
from simulators.simkit import Fault
from storage.deadletters import DeadLetterFilter, DeadLetterStore

pytestmark = pytest.mark.integration


def _event(store: CoreStore, i: int = 0, **changes: object) -> dict[str, object]:
    person = list(store.persons.values())[i]
    data = enrollment_to_event(person) | changes
    req = NationalRequest(infno="H2101", msgid=make_msgid("NJYBCORE0001", now_cst(), i),
                          input={"data": data})
    return req.model_dump(mode="json", exclude_none=True)


def _settings():  # type: ignore[no-untyped-def]
    s = load_settings()
    return s, fast_policies(s)


async def _post(st: Stack, body: object) -> httpx.Response:
    """Core's event to the hub, signed as core does."""
    url = f"{st.hub_url}/partners/core/events"
    async with httpx.AsyncClient(timeout=10, auth=st.partner_auth("core")) as c:
        if isinstance(body, bytes):
            return await c.post(url, content=body,
                                headers={"content-type": "application/json"})
        return await c.post(url, json=body)


async def test_success_reaches_tax_and_core() -> None:
    s, o = _settings()
    store = CoreStore.seed(1, 3, rng_seed=random.randrange(10**9))
    async with running_stack(s, store=store, overrides=o) as st:
        r = await _post(st, _event(store))
        assert r.status_code == 200, r.text
        cid = r.json()["output"]["correlation_id"]
        counts = await wait_until_settled(st, 1, timeout=20)
        assert counts == {"delivered": 1}
        txn = await st.hub.deps.journal.transaction(cid)
        assert txn and txn["status"] == "delivered"
        assert st.tax_state.log.summary()["effects"] == 1
        person = next(iter(store.persons.values()))
        assert store.sync_status[person.business_key]["status"] == "synced"
        hops = [e["hop"] for e in await st.hub.deps.journal.log_for(cid)]
        assert hops[:2] == ["ingress.core", "tax.employee"] and "core.sync" in hops
        # personal data is masked in the interaction log
        details = " ".join(e["detail"] for e in await st.hub.deps.journal.log_for(cid))
        assert person.id_number not in details


async def test_transient_tax_failures_recover_with_one_side_effect() -> None:
    s, o = _settings()
    store = CoreStore.seed(1, 2, rng_seed=random.randrange(10**9))
    async with running_stack(s, store=store, overrides=o) as st:
        st.tax_state.faults[:] = [Fault(kind="http_5xx", count=3, operation="EmployeeEnroll")]
        r = await _post(st, _event(store))
        cid = r.json()["output"]["correlation_id"]
        assert await wait_until_settled(st, 1, timeout=30) == {"delivered": 1}
        assert st.tax_state.log.summary()["effects"] == 1
        outcomes = [e["outcome"] for e in await st.hub.deps.journal.log_for(cid)]
        assert "retry" in outcomes


async def test_business_rejection_reaches_core_with_reason() -> None:
    s, o = _settings()
    store = CoreStore.seed(1, 2, rng_seed=random.randrange(10**9))
    person = next(iter(store.persons.values()))
    async with running_stack(s, store=store, overrides=o,
                             reject_suffixes={person.id_number[-5:-1]}) as st:
        await _post(st, _event(store))
        assert await wait_until_settled(st, 1, timeout=20) == {"rejected": 1}
        got = store.sync_status[person.business_key]
        assert got["status"] == "rejected" and got["reason_code"] == "TX201"


async def test_synchronous_tax_rejection_and_duplicate_event() -> None:
    s, o = _settings()
    store = CoreStore.seed(1, 2, rng_seed=random.randrange(10**9))
    async with running_stack(s, store=store, overrides=o) as st:
        st.tax_state.faults[:] = [Fault(kind="reject", count=1, code="TX102", text="单位未登记",
                                        operation="EmployeeEnroll")]
        ev = _event(store)
        await _post(st, ev)
        await wait_until_settled(st, 1, timeout=20)
        person = next(iter(store.persons.values()))
        assert store.sync_status[person.business_key]["reason_code"] == "TX102"
        # the same event again: same business fact, same answer, no new side effect
        await _post(st, ev)
        await wait_until_settled(st, 2, timeout=20)
        assert st.tax_state.log.summary()["effects"] == 0
        assert st.tax_state.log.calls == 1


@pytest.mark.parametrize(("body", "status", "field"), [
    (b"{not json", 400, "body"),
    (b'{"infno": "H2101"}', 422, "msgid"),
    (None, 422, "certno"),
    ("tel", 422, "tel"),
    ("unknown_infno", 422, "infno"),
])
async def test_bad_input_is_refused_naming_the_field(body: object, status: int,
                                                     field: str) -> None:
    s, o = _settings()
    store = CoreStore.seed(1, 2, rng_seed=random.randrange(10**9))
    async with running_stack(s, store=store, overrides=o) as st:
        if body is None:
            ev = _event(store)
            certno = ev["input"]["data"]["certno"]  # type: ignore[index]
            bad = certno[:17] + ("0" if certno[17] != "0" else "1")
            ev["input"]["data"]["certno"] = bad  # type: ignore[index]
            body = ev
        elif body == "tel":
            body = _event(store, tel="12345")
        elif body == "unknown_infno":
            body = _event(store) | {"infno": "H9999"}
        r = await _post(st, body)
        assert r.status_code == status, r.text
        out = r.json()
        assert out["infcode"] == -1 and field in out["err_msg"]
        assert st.tax_state.log.calls == 0
        assert (await st.hub.deps.journal.status_counts()).get("rejected") == 1


async def test_malformed_message_on_the_broker_is_dead_lettered_with_reason() -> None:
    s, o = _settings()
    async with running_stack(s, overrides=o) as st:
        names = st.hub.deps.names
        conn = await aio_pika.connect(s.amqp_url)
        async with conn:
            ch = await conn.channel()
            ex = await ch.get_exchange(names.work.name)
            await ex.publish(aio_pika.Message(b'{"type": "tax.employee.enroll"', message_id="bad1",
                                              delivery_mode=2), routing_key="tax.employee.enroll")
            await ex.publish(aio_pika.Message(json.dumps({
                "type": "tax.employee.enroll", "source": "core", "target": "tax",
                "correlation_id": "c-bad-payload", "idempotency_key": "k-bad-payload",
                "payload": {"id_number": "123"}}).encode(), delivery_mode=2),
                routing_key="tax.employee.enroll")
        archive = DeadLetterStore(st.hub.deps.journal.engine)
        rows = []
        for _ in range(100):
            if rows := await archive.list(DeadLetterFilter(route="tax.employee")):
                break
            await asyncio.sleep(0.1)
        assert rows, "the unreadable message was not archived from the DLQ"
        reason = rows[0].reason
        assert "body" in reason and "JSON" in reason, reason
        # a readable envelope with a bad payload: the originator is told, naming the field
        for _ in range(100):
            log = await st.hub.deps.journal.log_for("c-bad-payload")
            if any(e["outcome"] == "rejected" for e in log):
                break
            await asyncio.sleep(0.1)
        rejected = [e for e in log if e["outcome"] == "rejected"]
        assert rejected and "payload.id_number" in rejected[0]["detail"]
        assert st.tax_state.log.calls == 0
