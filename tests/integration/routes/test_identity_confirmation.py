"""灵活就业终止 with an identity tax holds as not unique (TX402), end to end: real RabbitMQ,
Redis, SQLite, the core and tax simulators over sockets.

* confirmed: core's termination is refused TX402; the hub opens a case, confirms the
  identity with tax (phone from core's record), re-drives the termination once tax's
  feedback says so, and core hears it synced. A duplicate feedback (tax's own, and one
  re-posted with another 受理号) terminates nothing twice: counted at the tax simulator.
* refused: tax refuses the confirmation (TX403); the case stays open with the reason,
  core hears the termination rejected; a caseworker confirms again through the API once
  tax would agree, and the termination is delivered once.

The simulator switch is ``TaxBook.not_unique`` (and ``confirm_refusals``) on
``Stack.tax_sim.book``.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest

from adapters.tax.soap import SOAP_ACTION_FEEDBACK, SOAP_CONTENT_TYPE, build_feedback_request
from config.settings import load_settings
from contracts.clock import today_beijing
from contracts.employee import TaxFeedback
from contracts.national import NationalRequest, make_msgid, now_cst
from simulators.core import CoreStore
from simulators.harness import fast_policies, running_stack
from simulators.simkit import Fault

pytestmark = pytest.mark.integration

READER = {"Authorization": "Bearer dev-readonly"}
CASEWORKER = {"Authorization": "Bearer dev-caseworker"}
TERMINATE = "FlexibleTerminate"
CONFIRM = "FlexibleIdentityConfirm"


def _stack() -> tuple[Any, CoreStore]:
    s = load_settings()
    store = CoreStore.seed(2, 4, rng_seed=random.randrange(10**9))
    return running_stack(s, store=store, overrides=fast_policies(s)), store


def _person(st: Any, store: CoreStore) -> dict[str, Any]:
    """A flexible worker core knows (with a phone), enrolled at tax and made not unique."""
    person = next(iter(store.records["flexible"].values()))
    book = st.tax_sim.book
    book.persons[("flexible", person["id_number"])] = {
        "status": "active", "jcybqh": person["community"], "xm": person["name"], "cbnd": ""}
    book.not_unique.add(person["id_number"])
    return person


async def _terminate(st: Any, http: httpx.AsyncClient, person: dict[str, Any]) -> str:
    req = NationalRequest(infno="H2204", msgid=make_msgid("NJYBCORE0001", now_cst(), 1),
                          input={"data": {"certno": person["id_number"],
                                          "psn_name": person["name"],
                                          "stop_date": today_beijing().isoformat(),
                                          "stop_rea": "01"}})
    r = await http.post(f"{st.hub_url}/partners/core/events",
                        json=req.model_dump(mode="json", exclude_none=True),
                        auth=st.partner_auth("core"))
    assert r.status_code == 200, r.text
    return str(r.json()["output"]["correlation_id"])


async def _until(st: Any, cid: str, statuses: tuple[str, ...], timeout: float = 30
                 ) -> dict[str, Any]:
    txn: dict[str, Any] | None = None
    for _ in range(int(timeout / 0.05)):
        txn = await st.hub.deps.journal.transaction(cid)
        if txn and txn["status"] in statuses:
            return txn
        await asyncio.sleep(0.05)
    raise AssertionError(f"{cid} never reached {statuses}: {txn}")


def _effects(st: Any, op: str, id_number: str) -> int:
    return int(st.tax_state.log.effects[f"{op}:{id_number}"])


async def _cases(st: Any, http: httpx.AsyncClient, status: str) -> dict[str, Any]:
    r = await http.get(f"{st.hub_url}/admin/confirmations", params={"status": status},
                       headers=READER)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_confirmed_identity_redrives_the_termination_once() -> None:
    stack, store = _stack()
    async with stack as st, httpx.AsyncClient(timeout=10) as http:
        person = _person(st, store)
        idn = person["id_number"]
        # tax's feedback of the confirmation comes twice
        st.tax_state.faults[:] = [Fault(kind="duplicate", operation=CONFIRM)]
        cid = await _terminate(st, http, person)
        txn = await _until(st, cid, ("delivered", "rejected", "dead"))
        assert txn["status"] == "delivered", txn
        assert st.tax_sim.book.persons[("flexible", idn)]["status"] == "terminated"
        assert store.sync_status[idn]["status"] == "synced"
        confirms = [f for f in st.tax_sim.delivered if f.operation == CONFIRM]
        assert len(confirms) == 2  # the duplicate really reached the hub
        # and once more, under another 受理号: a new message for the hub, the same fact
        again = TaxFeedback(**confirms[0].model_dump() | {"accept_no": "SL-AGAIN-1"})
        r = await http.post(f"{st.hub_url}/partners/tax/callback",
                            content=build_feedback_request(again),
                            headers={"Content-Type": SOAP_CONTENT_TYPE,
                                     "SOAPAction": f'"{SOAP_ACTION_FEEDBACK}"'},
                            auth=st.partner_auth("tax"))
        assert r.status_code == 200, r.text
        for _ in range(60):  # let every lane settle
            if not st.tax_sim.tasks:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)
        assert _effects(st, CONFIRM, idn) == 1
        assert _effects(st, TERMINATE, idn) == 1
        assert st.tax_state.log.summary()["duplicates"] == {}
        # a second termination would have been refused (TX303) and core told so
        assert store.sync_status[idn]["status"] == "synced"
        assert not [k for k in st.core_state.log.effects if k.endswith(f"{idn}:rejected")]
        assert (await st.hub.deps.journal.transaction(cid))["status"] == "delivered"
        page = await _cases(st, http, "all")
        assert page["counts"]["closed"] == 1 and page["counts"]["open"] == 0
        assert idn not in repr(page) and person["phone"] not in repr(page)


async def test_refused_confirmation_keeps_the_case_open_and_core_is_told() -> None:
    stack, store = _stack()
    async with stack as st, httpx.AsyncClient(timeout=10) as http:
        person = _person(st, store)
        idn = person["id_number"]
        st.tax_sim.book.confirm_refusals[idn] = "身份确认未通过"
        cid = await _terminate(st, http, person)
        txn = await _until(st, cid, ("delivered", "rejected", "dead"))
        assert (txn["status"], txn["reason_code"]) == ("rejected", "TX403"), txn
        assert store.sync_status[idn]["status"] == "rejected"
        assert store.sync_status[idn]["reason_code"] == "TX403"
        assert _effects(st, TERMINATE, idn) == 0 and _effects(st, CONFIRM, idn) == 0
        page = await _cases(st, http, "open")
        (case,) = page["items"]
        assert (case["reason_code"], case["reason"]) == ("TX403", "身份确认未通过")
        assert idn not in repr(page)

        # a caseworker confirms again once tax would agree
        del st.tax_sim.book.confirm_refusals[idn]
        r = await http.post(f"{st.hub_url}/admin/confirmations/{case['id']}",
                            json={"action": "confirm", "reason": "本人到柜台核实"},
                            headers=CASEWORKER)
        assert r.status_code == 202, r.text
        txn = await _until(st, cid, ("delivered",))
        assert store.sync_status[idn]["status"] == "synced"
        assert _effects(st, CONFIRM, idn) == 1 and _effects(st, TERMINATE, idn) == 1
        page = await _cases(st, http, "all")
        assert page["counts"]["closed"] == 1 and page["counts"]["open"] == 0
