"""Dead-letter operations on a real stack: RabbitMQ, Redis, SQLite, simulators over sockets.

A message dies (tax down for one person; core refusing a status; an unreadable
body; a consumer rejecting it so RabbitMQ itself dead-letters it), the
archiver moves it into ``dead_letters``, the admin API lists it masked, and a
retry after the fault is cleared delivers it, with the side effect counted at
the partner exactly once. A role that may not retry gets 403, audited.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aio_pika
import httpx
import pytest
from fastapi import FastAPI

from adapters.core.translate import enrollment_to_event
from api.admin import admin_router
from api.auth import Principal, hash_token
from broker.dlq import attach_dlq_archiver, start_late
from broker.topology import queue_depths
from config.settings import load_settings
from contracts.national import NationalRequest, make_msgid, now_cst
from simulators.core import CoreStore
from simulators.harness import Stack, fast_policies, running_stack
from simulators.simkit import Fault
from storage.audit import AuditLog
from storage.deadletters import DeadLetter, DeadLetterFilter, DeadLetterStore

pytestmark = pytest.mark.integration

TOKENS = {"ops-token-0123456789": Principal("olga", "operations"),
          "case-token-0123456789": Principal("carl", "caseworker")}
OPS = {"Authorization": "Bearer ops-token-0123456789"}
CASE = {"Authorization": "Bearer case-token-0123456789"}


@dataclass
class Ops:
    st: Stack
    store: DeadLetterStore
    audit: AuditLog
    client: httpx.AsyncClient


@asynccontextmanager
async def ops_stack(store: CoreStore | None = None) -> AsyncIterator[Ops]:
    """A running stack with the archiver attached to its (already started) broker and an
    admin app built around the hub's own deps: what main.py will wire."""
    s = load_settings()
    async with running_stack(s, store=store,
                             overrides=fast_policies(s, max_attempts=2,
                                                     delays_ms=(300, 600))) as st:
        hub = st.hub
        engine = hub.deps.journal.engine
        dl, audit = DeadLetterStore(engine), AuditLog(engine)
        names = hub.deps.names
        wired = {getattr(getattr(sub, "queue", None), "name", None)
                 for sub in hub._broker.subscribers}
        if names.dlq(hub.routes[0].name) not in wired:  # until main.py attaches it itself
            await start_late(attach_dlq_archiver(
                hub._broker, names, [r.name for r in hub.routes], dl,
                partners={r.name: r.partner for r in hub.routes}))
        app = FastAPI()
        app.include_router(admin_router(hub.deps, dl, audit,
                                        {hash_token(t): p for t, p in TOKENS.items()}))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://hub", timeout=30) as client:
            yield Ops(st, dl, audit, client)


async def _until(check: Callable[[], Awaitable[Any]], timeout: float = 30,
                 what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if got := await check():
            return got
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def _dead(ops: Ops, n: int = 1, **flt: Any) -> list[DeadLetter]:
    async def rows() -> list[DeadLetter] | None:
        got = await ops.store.list(DeadLetterFilter(status="dead", **flt))
        return got if len(got) >= n else None
    return list(await _until(rows, what=f"{n} dead letter(s) {flt}"))


async def _status(ops: Ops, cid: str, want: str, timeout: float = 30) -> None:
    async def check() -> bool:
        txn = await ops.st.hub.deps.journal.transaction(cid)
        return bool(txn and txn["status"] == want)
    await _until(check, timeout, f"transaction {cid} {want}")


async def _enroll(st: Stack, store: CoreStore) -> str:
    person = next(iter(store.persons.values()))
    req = NationalRequest(infno="H2101", msgid=make_msgid("NJYBCORE0001", now_cst(), 1),
                          input={"data": enrollment_to_event(person)})
    async with httpx.AsyncClient(timeout=10) as c:
        r = await c.post(f"{st.hub_url}/partners/core/events",
                         json=req.model_dump(mode="json", exclude_none=True),
                         auth=st.partner_auth("core"))
    assert r.status_code == 200, r.text
    return str(r.json()["output"]["correlation_id"])


async def test_tax_down_dead_letter_is_listed_retried_and_delivered_once() -> None:
    store = CoreStore.seed(1, 2, rng_seed=random.randrange(10**9))
    person = next(iter(store.persons.values()))
    async with ops_stack(store) as ops:
        st = ops.st
        st.tax_state.faults[:] = [Fault(kind="http_5xx", match=person.id_number,
                                        operation="EmployeeEnroll")]
        cid = await _enroll(st, store)
        [dead] = await _dead(ops, route="tax.employee")
        await _status(ops, cid, "dead")
        assert (dead.partner, dead.type, dead.reason_code, dead.correlation_id) == \
            ("tax", "tax.employee.enroll", "UNAVAILABLE", cid)
        assert dead.attempts == 2 and person.id_number.encode() in dead.body
        # the DLQ is drained into the table: nothing is left on the queue
        dlq = st.hub.deps.names.dlq("tax.employee")
        assert (await queue_depths(st.settings.amqp_url, [dlq]))[dlq] == 0

        r = await ops.client.get("/admin/dead-letters", headers=OPS,
                                 params={"partner": "tax", "reason_code": "UNAVAILABLE"})
        assert r.status_code == 200 and [d["id"] for d in r.json()["items"]] == [dead.id]
        assert person.id_number not in r.text and person.name not in r.text
        groups = (await ops.client.get("/admin/dead-letters/groups", headers=OPS)).json()
        assert [(g["reason_code"], g["count"]) for g in groups] == [("UNAVAILABLE", 1)]

        # a caseworker may not retry: 403, audited
        r = await ops.client.post("/admin/dead-letters/retry", headers=CASE,
                                  json={"ids": [dead.id], "reason": "try"})
        assert r.status_code == 403
        [refused] = await ops.audit.list(outcome="forbidden")
        assert (refused.actor, refused.role) == ("carl", "caseworker")
        assert st.tax_state.log.summary()["effects"] == 0

        st.tax_state.faults.clear()
        r = await ops.client.post("/admin/dead-letters/retry", headers=OPS,
                                  json={"ids": [dead.id], "reason": "tax is back"})
        assert r.status_code == 200 and r.json()["done"] == [dead.id], r.text
        await _status(ops, cid, "delivered")
        tax = st.tax_state.log.summary()
        assert (tax["effects"], tax["duplicates"]) == (1, {})
        assert store.sync_status[person.business_key]["status"] == "synced"
        row = await ops.store.get(dead.id)
        assert row is not None and (row.status, row.retried_count) == ("retried", 1)
        assert await ops.store.count(DeadLetterFilter(status="dead")) == 0
        [done] = await ops.audit.list(action="dead_letter.retry")
        assert (done.actor, done.outcome, done.detail["done"]) == ("olga", "ok", 1)


async def test_a_permanently_refused_message_is_worked_again_on_purpose() -> None:
    """core.sync has nobody to tell: a 4xx parks it with its idempotency key completed as
    rejected. The retry forgets that key, so it is worked again, not taken as a repeat."""
    store = CoreStore.seed(1, 2, rng_seed=random.randrange(10**9))
    person = next(iter(store.persons.values()))
    async with ops_stack(store) as ops:
        st = ops.st
        st.core_state.faults[:] = [Fault(kind="http_4xx", operation="H9201")]
        cid = await _enroll(st, store)
        [dead] = await _dead(ops, route="core.sync")
        assert (dead.partner, dead.reason_code) == ("core", "CLIENT_ERROR")
        await _status(ops, cid, "dead")
        st.core_state.faults.clear()
        r = await ops.client.post("/admin/dead-letters/retry", headers=OPS,
                                  json={"group": {"reason_code": "CLIENT_ERROR",
                                                  "partner": "core"},
                                        "reason": "core fixed its validation"})
        assert r.json()["done"] == [dead.id], r.text
        await _status(ops, cid, "delivered")
        assert store.sync_status[person.business_key]["status"] == "synced"
        core = st.core_state.log.summary()
        assert (core["effects"], core["duplicates"]) == (1, {})
        assert st.tax_state.log.summary()["effects"] == 1


async def test_unreadable_and_broker_dead_letters_are_archived_raw() -> None:
    async with ops_stack() as ops:
        st = ops.st
        names = st.hub.deps.names
        conn = await aio_pika.connect(st.settings.amqp_url)
        async with conn:
            ch = await conn.channel()
            work = await ch.get_exchange(names.work.name)
            await work.publish(aio_pika.Message(b'{"type": "tax.employee.enroll"',
                                                message_id="bad1", delivery_mode=2),
                               routing_key="tax.employee.enroll")
            # a consumer rejecting a message: RabbitMQ dead-letters it itself (x-death)
            tmp = await ch.declare_queue(f"{names.ns}.tmp.reject", auto_delete=True, arguments={
                "x-dead-letter-exchange": names.dlx.name,
                "x-dead-letter-routing-key": names.queue("core.sync")})
            await ch.default_exchange.publish(aio_pika.Message(b"\xff not even utf-8",
                                                               message_id="bad2"),
                                              routing_key=tmp.name)
            got = await _until(lambda: tmp.get(fail=False), what="the temp message")
            await got.reject(requeue=False)
            await tmp.delete(if_unused=False, if_empty=False)
        [bad1] = await _dead(ops, route="tax.employee")
        # (the runtime parks an unreadable body without its AMQP ids: nothing to name it by)
        assert (bad1.reason_code, bad1.message_id, bad1.type) == ("VALIDATION", "-", "-")
        assert "JSON" in bad1.reason and bad1.body == b'{"type": "tax.employee.enroll"'
        [bad2] = await _dead(ops, route="core.sync")
        assert (bad2.message_id, bad2.reason_code) == ("bad2", "rejected")
        assert "tmp.reject" in bad2.reason and bad2.body == b"\xff not even utf-8"

        r = await ops.client.get(f"/admin/dead-letters/{bad1.id}", headers=OPS)
        assert r.json()["body_readable"] is False
        r = await ops.client.post("/admin/dead-letters/retry", headers=OPS,
                                  json={"all": True, "reason": "see what happens"})
        res = r.json()
        assert res["done"] == [] and {p["id"] for p in res["skipped"]} == {bad1.id, bad2.id}
        r = await ops.client.post("/admin/dead-letters/archive", headers=OPS,
                                  json={"ids": [bad1.id, bad2.id], "reason": "garbage"})
        assert sorted(r.json()["done"]) == sorted([bad1.id, bad2.id])  # archived in any order
        assert await ops.store.count(DeadLetterFilter(status="archived")) == 2
