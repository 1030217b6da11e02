"""The F12 part of ``make demo``: trade-union mutual-aid cases from application to archive.

``union_round(st, http)`` plays the city union (``simulators.union``): it sends the year's
tables, then four cases: two run to archive (one urgent; the union's endpoint fails the
first closure delivery twice, the lane retries), one is refused at the door for a bad scan
(a colour JPG at 200 dpi: 422 naming ``images.0.content``), one is 不予受理 (the applicant is
not on the roster: the unit and the city union are told). A caseworker closes, the union
sends its 终审结案, the caseworker returns the archive. Counted at the union simulator:
``delivered`` = the union received the case's 档案返还; ``rejected`` = refused at the door
or told 不予受理; ``duplicates`` = duplicate notices at the union.
"""

from __future__ import annotations

import asyncio
import base64
import random
from collections.abc import Callable
from typing import Any

import httpx

from contracts.clock import today_beijing
from simulators.harness import Stack
from simulators.simkit import Fault
from simulators.union import (
    UnionInbox,
    UnionSide,
    make_case,
    make_jpeg,
    make_member,
    make_standards,
)
from tools.demo_flows import Flow, Outcome, extra_effects, http_outcome, wait_for

__all__ = ["union_round"]

CASEWORKER = {"Authorization": "Bearer dev-caseworker"}


def _has(box: UnionInbox, case_no: str, notice: str) -> Callable[[], bool]:
    return lambda: notice in box.of(case_no)


async def _act(http: httpx.AsyncClient, st: Stack, case_id: str, action: str) -> int:
    r = await http.post(f"{st.hub_url}/admin/union/cases/{case_id}",
                        json={"action": action, "reason": "demo"}, headers=CASEWORKER)
    return r.status_code


async def union_round(st: Stack, http: httpx.AsyncClient) -> tuple[list[str], Flow]:
    """F12 through the running hub; lines to print and the flow counted at the union."""
    assert st.union_state is not None and st.union_inbox is not None
    state, box = st.union_state, st.union_inbox
    before = state.log.snapshot()
    union = UnionSide(st.hub_url, st.union_secret)
    today, rng = today_beijing(), random.Random(12)
    stamp = today.strftime("%Y%m%d")
    members = [make_member(rng, "U3201001") for _ in range(3)]
    r = await union.put_standards(http, today.year, make_standards(members))
    r.raise_for_status()
    state.faults.append(Fault(kind="http_5xx", count=2, operation="closure"))

    to_archive = [make_case(f"UC{stamp}D1", members[0], year=today.year, complete_on=today),
                  make_case(f"UC{stamp}D2", members[1], year=today.year, complete_on=today,
                            urgent=True)]
    bad_scan = make_case(f"UC{stamp}D3", members[2], year=today.year, complete_on=today)
    bad_scan["images"][0]["content"] = base64.b64encode(make_jpeg(200)).decode()
    stranger = make_member(random.Random(99), "U3201001")
    not_listed = make_case(f"UC{stamp}D4", stranger, year=today.year, complete_on=today)

    outcomes: list[Outcome] = []
    lines: list[str] = []
    ids: dict[str, str] = {}
    for case in to_archive:
        r = await union.submit(http, case)
        if r.status_code in (200, 201):
            ids[case["case_no"]] = r.json()["case"]["id"]
    r = await union.submit(http, bad_scan)
    field = (r.json().get("errors") or [{}])[0] if r.status_code == 422 else {}
    outcomes.append(http_outcome(r.status_code))
    lines.append(f"  union: bad scan refused {r.status_code} naming "
                 f"{field.get('field')}: {field.get('reason')}")
    r = await union.submit(http, not_listed)
    told = await wait_for(lambda: box.of(not_listed["case_no"]).get(
        "acceptance:unit", {}).get("decision") == "不予受理", 20)
    outcomes.append("rejected" if told else "dead")

    queue = (await http.get(f"{st.hub_url}/admin/union/cases?status=accepted",
                            headers=CASEWORKER)).json()["cases"]
    lines.append("  union: work order " + " ".join(c["case_no"] + ("!" if c["urgent"] else "")
                                                   for c in queue))
    order = [(c["case_no"], c["id"]) for c in queue if c["case_no"] in ids]
    for no, case_id in order:  # the caseworker works urgent cases first (seed line 71)
        await _act(http, st, case_id, "close")
        await wait_for(_has(box, no, "closure:city_union"), 20)
        await union.final(http, no, today)
        await _act(http, st, case_id, "archive")
    for case in to_archive:
        no = case["case_no"]
        done = await wait_for(_has(box, no, "archive:city_union"), 20)
        outcomes.append("delivered" if done else "dead")
        closure: dict[str, Any] = box.of(no).get("closure:city_union", {})
        lines.append(f"  union: {no} {closure.get('decision', '?')} "
                     f"{closure.get('parsed', {}).get('payable', '?')} yuan, file "
                     f"{closure.get('file_name', '?')}, archived={done}")
    await asyncio.sleep(0)
    dup = extra_effects(state.log.since(before))
    return lines, Flow.of(outcomes, duplicates=dup)
