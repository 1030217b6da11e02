"""The F14 part of ``make demo``: 对账 with designated institutions and 单边帐.

``reconciliation_round(st, http)`` plays the institutions (``simulators.institutions``):

1. a balanced day: the institution's 3201 -> 平;
2. a day with a differing amount: 3201 -> 不平, then 9101 + 3202 of its detail; the hub's
   result file (9102) names the setl_id and the field (cash_payamt);
3. refused at the door: totals that do not add up, money as a float;
4. a day with three 单边帐 (local institution-only, 异地 core-only, 跨省 institution-only),
   reconciled by the bureau (the hub asks the HIS): the rule reverses (2208, the HIS fails
   it twice with 5xx first: retried) and completes (H3203) the first two; a caseworker
   reverses the 跨省 one (asked twice: one effect); the last re-reconciliation is 平;
5. a 移动支付 notice (H3205) that becomes a row at the hub and is reported with its day;
6. a 单边帐 whose 冲正 the HIS refuses (counted at the HIS): the case is ``failed``, for a
   caseworker; the runtime parks the message too.

Counted at the simulators: ``sent`` = reconciliations asked + resolutions + notices;
``delivered`` = answered (平 or diagnosed) / made at the HIS (its effect) / recorded;
``rejected`` = refused at the door or by the HIS; ``duplicates`` = duplicate effects at the
HIS.
"""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import httpx

from contracts.national import now_cst
from simulators.harness import Stack
from simulators.institutions import CODES, ReconSims
from simulators.simkit import Fault
from tools.demo_flows import Flow, Outcome, extra_effects, http_outcome, wait_for

__all__ = ["reconciliation_round"]

CASEWORKER = {"Authorization": "Bearer dev-caseworker"}


def _zip_text(b64: str) -> str:
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(b64))) as z:
        return z.read(z.namelist()[0]).decode()


async def _cases(http: httpx.AsyncClient, st: Stack, code: str, day: date) -> list[Any]:
    r = await http.get(f"{st.hub_url}/admin/reconciliation/cases", headers=CASEWORKER,
                       params={"fixmedins_code": code, "stmt_date": day.isoformat()})
    return list(r.json().get("cases", []))


async def reconciliation_round(st: Stack, http: httpx.AsyncClient, *, offset: int = 10
                               ) -> tuple[list[str], Flow]:
    """F14 through the running hub; lines to print and the flow counted at the simulators.
    ``offset``: how many days back the round's days start (a test may run it beside its own)."""
    sims: ReconSims = st.sims["reconciliation"]
    book, his = sims.book, sims.his_state
    before = his.log.snapshot()
    today = now_cst().date()
    d_ok, d_diff, d_one, d_dead = (today - timedelta(days=offset + i) for i in range(4))
    a, b, c = CODES
    outcomes: list[Outcome] = []
    lines: list[str] = []

    # 1. balanced
    book.settle(a, d_ok, 6)
    r = await sims.his_side(st.hub_url, a).send_totals(http, d_ok)
    rslt = r.json().get("output", {}).get("stmtinfo", {}) if r.status_code == 200 else {}
    outcomes.append("delivered" if rslt.get("stmt_rslt") == "0" else http_outcome(
        r.status_code) if r.status_code != 200 else "dead")
    lines.append(f"  对账: {a} {d_ok} 3201 -> stmt_rslt={rslt.get('stmt_rslt')} "
                 f"({rslt.get('stmt_rslt_dscr')})")

    # 2. a differing amount, diagnosed to the setl_id by the detail file
    rows = book.settle(b, d_diff, 5)
    book.plant_difference(b, d_diff, rows[2].setl_id, "3.50")
    side_b = sims.his_side(st.hub_url, b)
    r = await side_b.send_totals(http, d_diff)
    rslt = r.json().get("output", {}).get("stmtinfo", {}) if r.status_code == 200 else {}
    r = await side_b.send_detail(http, d_diff)
    info = r.json().get("output", {}).get("fileinfo", {}) if r.status_code == 200 else {}
    got = await side_b.download(http, str(info.get("file_qury_no", "")))
    text = _zip_text(got.json()["output"]["file"]) if got.status_code == 200 else ""
    found = rows[2].setl_id in text and "cash_payamt" in text
    outcomes += ["delivered" if rslt.get("stmt_rslt") == "1" else "dead",
                 "delivered" if found else "dead"]
    lines.append(f"  对账: {b} {d_diff} 不平 {rslt.get('differing')}; 3202 result file: "
                 f"{text.strip()}")

    # 3. refused at the door
    bad = {**side_b.totals(d_diff), "cash_payamt": "0.01"}
    r = await side_b.send_totals(http, d_diff, bad)
    err = (r.json().get("output") or {}).get("errors", [{}])[0]
    outcomes.append(http_outcome(r.status_code))
    lines.append(f"  对账: totals that do not add up -> {r.status_code} {err.get('field')}: "
                 f"{err.get('reason')}")
    raw = side_b.envelope("3201", {"data": {**side_b.totals(d_diff), "acct_pay": 1.5}}, b)
    r = await side_b.call(http, "3201", {}, raw=raw)
    err = (r.json().get("output") or {}).get("errors", [{}])[0]
    outcomes.append(http_outcome(r.status_code))
    lines.append(f"  对账: money as a float -> {r.status_code} {err.get('field')}: "
                 f"{err.get('reason')}")

    # 4. 单边帐: by rule (with retries) and by a caseworker; re-reconciled 平
    book.settle(c, d_one, 4)
    local = book.plant_one_sided(c, d_one, "his", scope="local")
    yidi = book.plant_one_sided(c, d_one, "core", scope="provincial")
    cross = book.plant_one_sided(c, d_one, "his", scope="national")
    his.faults.append(Fault(kind="http_5xx", count=2, operation="2208", match=local.setl_id))
    r = await http.post(f"{st.hub_url}/admin/reconciliation/runs", headers=CASEWORKER,
                        json={"stmt_date": d_one.isoformat(), "fixmedins_codes": [c]})
    run = r.json()["runs"][0] if r.status_code == 200 else {}
    outcomes.append("delivered" if run.get("stmt_rslt") == "1" else "dead")
    lines.append(f"  单边帐: {c} {d_one} " + ", ".join(
        f"{f['setl_id']} {f['kind']} {f['scope']}" for f in run.get("findings", [])))
    def made(key: str) -> Callable[[], bool]:
        return lambda: his.log.effects[key] > 0

    for row, act in ((local, "reverse"), (yidi, "complete")):
        done = await wait_for(made(f"{act}:{c}:{row.setl_id}"), 20)
        outcomes.append("delivered" if done else "dead")
    held = [x for x in await _cases(http, st, c, d_one) if x["setl_id"] == cross.setl_id]
    for _ in range(2):  # asked twice: one effect at the HIS
        r = await http.post(f"{st.hub_url}/admin/reconciliation/cases/{held[0]['id']}",
                            headers=CASEWORKER, json={"action": "reverse",
                                                      "reason": "跨省 confirmed void"})
    done = await wait_for(lambda: his.log.effects[f"reverse:{c}:{cross.setl_id}"] > 0, 20)
    outcomes.append("delivered" if done else "dead")

    async def final() -> bool:
        cs = {x["setl_id"]: x for x in await _cases(http, st, c, d_one)}
        return bool(cs.get(cross.setl_id, {}).get("rereconciled") == "balanced")

    balanced = False
    for _ in range(100):
        if balanced := await final():
            break
        await wait_for(lambda: False, 0.1)
    lines.append(f"  单边帐: rule reversed {local.setl_id} (after 2 HIS 5xx), completed "
                 f"{yidi.setl_id}; caseworker reversed {cross.setl_id}; re-reconciled "
                 f"{'平' if balanced else '不平'}")

    # 5. a 移动支付 notice
    row, r = await sims.mobile(st.hub_url).settle(http, a, d_ok)
    outcomes.append(http_outcome(r.status_code))
    lines.append(f"  移动支付: notice {row.setl_id} -> {r.status_code} recorded="
                 f"{(r.json().get('output') or {}).get('recorded')}")

    # 6. a resolution the HIS refuses: failed, dead-lettered
    book.settle(a, d_dead, 2)
    lost = book.plant_one_sided(a, d_dead, "his", scope="local")
    his.faults.append(Fault(kind="reject", operation="2208", match=lost.setl_id,
                            code="E2208", text="settlement already cleared"))
    await http.post(f"{st.hub_url}/admin/reconciliation/runs", headers=CASEWORKER,
                    json={"stmt_date": d_dead.isoformat(), "fixmedins_codes": [a]})

    async def failed() -> bool:
        return any(x["status"] == "failed" for x in await _cases(http, st, a, d_dead))

    is_failed = False
    for _ in range(100):
        if is_failed := await failed():
            break
        await wait_for(lambda: False, 0.1)
    refused = book.refused.get(f"2208:{a}:{lost.setl_id}", 0)  # counted at the HIS
    outcomes.append("rejected" if refused == 1 and is_failed else "dead")
    lines.append(f"  单边帐: {lost.setl_id} 冲正 refused by the HIS {refused}x -> case "
                 f"{'failed, for a caseworker' if is_failed else 'NOT failed'}")
    dup = extra_effects(his.log.since(before))
    return lines, Flow.of(outcomes, duplicates=dup)
