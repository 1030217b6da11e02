"""Fault test e: two hub processes consume together: no duplicates, per-entity order kept.

Each person gets four changes (wages 1000..4000) in order; tax fails 20% of
calls at random so messages go through delayed retry while later changes of
the same person arrive. A pass-through in front of tax records the order in
which tax accepted each person's changes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from adapters.core.translate import enrollment_to_event
from adapters.signing import SignedAuth
from adapters.tax.soap import parse_enroll_request
from broker.topology import Names, delete_topology
from config.settings import load_settings
from contracts.national import NationalRequest, make_msgid, now_cst
from simulators.core import CoreStore
from simulators.core import create_app as core_app
from simulators.harness import _free_port
from simulators.serving import serve_app
from simulators.simkit import Fault, SimState
from simulators.tax import create_app as tax_app
from storage.journal import Journal, make_engine
from tests.integration.faults.hubproc import (
    ALL_ROUTES,
    hub_env,
    partner_secret,
    start_hub,
    stop_hub,
    wait_http,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PERSONS, CHANGES = 50, 4


def tap_app(upstream: list[str], accepted: list[tuple[str, str]]) -> FastAPI:
    app = FastAPI()
    client = httpx.AsyncClient(timeout=10)

    @app.post("/tax/ws")
    async def forward(request: Request) -> Response:
        body = await request.body()
        r = await client.post(upstream[0], content=body,
                              headers={"content-type": request.headers.get("content-type",
                                                                           "text/xml")})
        if r.status_code == 200 and b"<retStatus>S</retStatus>" in r.content.replace(
                b"tax:", b""):
            _, fields = parse_enroll_request(body)
            accepted.append((fields["zjhm"], fields["jfgz"]))
        return Response(r.content, status_code=r.status_code,
                        media_type=r.headers.get("content-type"))

    return app


async def test_two_hubs_no_duplicates_and_per_person_order(tmp_path: Path) -> None:
    ns = f"two{uuid.uuid4().hex[:8]}"
    db = f"sqlite+aiosqlite:///./.run/{ns}.db"
    ports = [_free_port(), _free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    store = CoreStore.seed(5, PERSONS, rng_seed=int(time.time()))
    core_state, tax_state = SimState(), SimState()
    tax_state.faults[:] = [Fault(kind="http_5xx", rate=0.2, operation="EmployeeEnroll")]
    accepted: list[tuple[str, str]] = []
    upstream: list[str] = []
    procs = []
    async with serve_app(core_app(core_state, store=store)) as core_url, \
            serve_app(tax_app(tax_state, callback_url=f"{urls[0]}/partners/tax/callback",
                                     callback_secret=partner_secret("tax"),
                                     reject_suffixes=())) \
            as tax_url, serve_app(tap_app(upstream, accepted)) as tap_url:
        upstream.append(f"{tax_url}/tax/ws")
        try:
            for port, url in zip(ports, urls, strict=True):  # one at a time: one migrates
                procs.append(start_hub(hub_env(
                    tmp_path, ns=ns, db=db, port=port, core_url=core_url,
                    tax_url=f"{tap_url}/tax/ws", callback_base=urls[0])))
                await wait_http(f"{url}/health")
            persons = list(store.persons.values())
            core = SignedAuth("core", partner_secret("core"))
            async with httpx.AsyncClient(timeout=30, auth=core) as client:
                sem = asyncio.Semaphore(10)
                seq = 0

                async def post(i: int, p: object, r: int) -> None:
                    data = enrollment_to_event(p) | {"wag": 1000 * (r + 1), "seq": r + 1}  # type: ignore[arg-type]
                    req = NationalRequest(infno="H2101",
                                          msgid=make_msgid("NJYBCORE0001", now_cst(), i),
                                          input={"data": data})
                    async with sem:
                        resp = await client.post(f"{urls[i % 2]}/partners/core/events",
                                                 json=req.model_dump(mode="json",
                                                                     exclude_none=True))
                    assert resp.status_code == 200, resp.text

                for r in range(CHANGES):  # each person's changes in order, alternating hubs
                    await asyncio.gather(*(post(seq + k, p, r) for k, p in enumerate(persons)))
                    seq += len(persons)
            journal = Journal(make_engine(db))
            deadline = time.monotonic() + 120
            counts: dict[str, int] = {}
            while time.monotonic() < deadline:
                counts = await journal.status_counts()
                if counts.get("delivered", 0) >= PERSONS * CHANGES:
                    break
                await asyncio.sleep(0.5)
            await journal.engine.dispose()
        finally:
            for p in procs:
                stop_hub(p)
            s = load_settings()
            await delete_topology(s.amqp_url, Names(ns),
                                  ALL_ROUTES,
                                  (300, 600, 1200, 2400))
    effects = tax_state.log.effects
    by_person: dict[str, list[str]] = defaultdict(list)
    for zjhm, wage in accepted:
        if not by_person[zjhm] or by_person[zjhm][-1] != wage:  # a replay repeats the last
            by_person[zjhm].append(wage)
    out_of_order = [z for z, w in by_person.items()
                    if w != [str(1000 * (r + 1)) for r in range(CHANGES)]]
    dup = Counter({k: n for k, n in effects.items() if n != CHANGES})
    print(f"\ntwo-hubs test: sent={PERSONS * CHANGES} delivered={counts.get('delivered', 0)} "
          f"tax_effects={sum(effects.values())} tax_replays_absorbed={tax_state.log.replays} "
          f"persons_out_of_order={len(out_of_order)} effect_count_mismatches={len(dup)}")
    assert counts.get("delivered", 0) == PERSONS * CHANGES, counts
    assert sum(effects.values()) == PERSONS * CHANGES and not dup
    assert not out_of_order, {z: by_person[z] for z in out_of_order[:3]}
