"""F7 困难人员 in the demo: a month's lists from every department, through 初审 and 复核,
to the 医疗救助平台 and core, with the status back to each department.

``difficulty_round(st, http)`` runs on a ``simulators.harness`` stack and returns its
lines and the ``Flow`` counted at the simulators: ``sent`` = every row the departments
sent (their systems and one GBK file a caseworker imported), ``delivered`` = rows whose
department heard ``synced`` and whose 进入 core shows, ``rejected`` = rows refused in
the department's receipt (row, field, reason) or heard ``refused``; the rest is dead.
``duplicates`` = extra effects at core (H4001), the platform and the departments; each
list is pushed twice on purpose, the second push a replay.

``assistance_round(st, http)`` adds the 医疗救助平台's other exchanges to F7 (1487, 1497),
counted at the simulators: 医疗费用查询 (answered, or refused for a non-recipient), core's
结算费用同步 events (``sent`` = settlements core reported, ``delivered`` = settlements the
platform took, ``rejected`` = a non-recipient's refused at the door and one the platform
refuses; one event reported twice, two platform 5xx retried), a month's 医疗救助结算数据
run three times (the first stopped by a platform 5xx, the third pushes nothing; ``sent``
= the month's rows, ``delivered`` = rows the platform took) and 阳光惠民's 救助费用 and
机构 tables of the day (``sent`` = the hub's settlements of the year and core's
定点医疗机构, ``delivered`` = rows 阳光惠民 took).
"""

from __future__ import annotations

import asyncio
import random
from datetime import date, datetime, timedelta
from typing import Any

import httpx

from contracts.assistance import month_bounds, settlement_ref
from contracts.clock import today_beijing
from contracts.difficulty import COLUMNS, DEPARTMENTS
from contracts.ids import make_id_number
from simulators.assistance import emit_settlement, make_settlement, query_expenses
from simulators.departments import make_records, send_list
from simulators.harness import Stack
from simulators.simkit import Fault
from tools.demo_flows import Flow, extra_effects, wait_for

__all__ = ["assistance_round", "difficulty_round", "review_all", "sunshine_now"]

FIRST = {"Authorization": "Bearer dev-caseworker"}
SECOND = {"Authorization": "Bearer dev-admin"}
"""初审 and 复核 by two accounts (the admin role may act as a caseworker)."""


def gbk_csv(records: list[dict[str, Any]]) -> bytes:
    """A department's list as the GBK CSV a department without integration sends."""
    columns = list(COLUMNS)
    lines = [",".join(columns)]
    for r in records:
        lines.append(",".join(str(r.get(COLUMNS[c], "")) for c in columns))
    return ("\r\n".join(lines) + "\r\n").encode("gbk")


async def review_all(st: Stack, http: httpx.AsyncClient) -> tuple[int, int]:
    """Every waiting record through 初审 (dev-caseworker) then 复核 (dev-admin)."""
    done = []
    for step, headers in (("first", FIRST), ("second", SECOND)):
        n = 0
        while True:
            r = await http.get(f"{st.hub_url}/admin/difficulty/reviews",
                               params={"step": step, "limit": 500}, headers=headers)
            r.raise_for_status()
            ids = [rec["id"] for rec in r.json()["records"]]
            if not ids:
                break
            r = await http.post(f"{st.hub_url}/admin/difficulty/reviews", headers=headers,
                                json={"record_ids": ids, "decision": "approve"})
            r.raise_for_status()
            n += sum(1 for x in r.json()["results"] if x["outcome"] == "ok")
        done.append(n)
    return done[0], done[1]


async def difficulty_round(st: Stack, http: httpx.AsyncClient, *, per_department: int = 6,
                           bad_per_department: int = 2, seed: int = 7
                           ) -> tuple[list[str], Flow]:
    sims = st.difficulty
    if sims is None:
        return ["F7 困难人员: the stack has no F7 simulators"], Flow()
    rng = random.Random(seed)
    month = today_beijing().strftime("%Y-%m")
    before = (st.core_state.log.snapshot(), sims.platform_state.log.snapshot(),
              sims.dept_state.log.snapshot())
    sent = refused_in_receipt = replays = 0
    kept: dict[str, str] = {}  # record id -> department
    for i, dept in enumerate(DEPARTMENTS):
        rows = make_records(rng, dept, per_department, month=month, bad=bad_per_department)
        list_id = f"{dept}-{month}-{seed}-{i}"
        for attempt in range(2):  # the second push is a replay (same list id)
            r = await send_list(http, st.hub_url, dept, month, list_id, rows, sims.secret(dept))
            r.raise_for_status()
            receipt = r.json()
            if attempt:
                replays += int(bool(receipt.get("duplicate")))
                continue
            sent += receipt["rows"]
            refused_in_receipt += receipt["refused_rows"]
            kept |= {rec["record_id"]: dept for rec in receipt["records"]}
    # a department without integration: a GBK CSV a caseworker imports (veterans)
    file_rows = make_records(rng, "veterans", 3, month=month, bad=1)
    r = await http.post(f"{st.hub_url}/admin/difficulty/files/veterans", headers=FIRST,
                        params={"month": month, "filename": f"veterans-{seed}.csv"},
                        content=gbk_csv(file_rows))
    r.raise_for_status()
    receipt = r.json()
    sent += receipt["rows"]
    refused_in_receipt += receipt["refused_rows"]
    kept |= {rec["record_id"]: "veterans" for rec in receipt["records"]}
    first, second = await review_all(st, http)
    inbox = sims.inbox
    await wait_for(lambda: all(inbox.status_of(d, rid) for rid, d in kept.items()), 60)
    synced = [rid for rid, d in kept.items() if inbox.status_of(d, rid) == "synced"]
    refused = [rid for rid, d in kept.items() if inbox.status_of(d, rid) == "refused"]
    core_now = st.core_state.log.since(before[0], "H4001:")
    core_records = {k.rsplit(":", 1)[1] for k in core_now}
    delivered = sum(1 for rid in synced if rid in core_records)
    platform = sims.platform_state.log.since(before[1], "push:")
    duplicates = (extra_effects(core_now) + extra_effects(platform)
                  + extra_effects(sims.dept_state.log.since(before[2], "status:")))
    flow = Flow(sent=sent, delivered=delivered, rejected=refused_in_receipt + len(refused),
                failed=max(0, sent - delivered - refused_in_receipt - len(refused)),
                duplicates=duplicates)
    lines = [
        f"  困难人员 lists: {len(DEPARTMENTS)} departments + 1 GBK file, rows={sent}, refused in "
        f"receipt={refused_in_receipt} (row, field, reason), replayed pushes={replays}",
        f"  困难人员 review: 初审={first} 复核={second} (two accounts)",
        f"  困难人员 effects: platform={sum(platform.values())} "
        f"core 进入/退出={sum(core_now.values())} "
        f"status back synced={len(synced)} refused={len(refused)}",
    ]
    return lines, flow


def _previous_month(today: date) -> str:
    first = date(today.year, today.month, 1) - timedelta(days=1)
    return f"{first.year:04d}-{first.month:02d}"


async def sunshine_now(st: Stack) -> dict[str, Any] | None:
    """The hub's scheduled 阳光惠民 run (its ticker's function), now: the day's three tables
    (救助人员, 救助费用, 机构) with core's 定点医疗机构; None without the ticker."""
    for name, _, check in getattr(st.hub, "tickers", ()):
        if name == "difficulty-sunshine":
            await check()
            return {}
    return None


async def assistance_round(st: Stack, http: httpx.AsyncClient, *, recipients: int = 4,
                           seed: int = 11) -> tuple[list[str], Flow]:
    sims = st.difficulty
    if sims is None or sims.sunshine is None:
        return ["F7 医疗救助平台: the stack has no F7 simulators"], Flow()
    rng = random.Random(seed)
    platform, sun, book = sims.platform_state, sims.sunshine, st.store.settlements
    today = today_beijing()
    month = _previous_month(today)
    mon = month.replace("-", "")
    # recipients from the month before: a 民政 list through 初审 and 复核
    rows = make_records(rng, "civil_affairs", recipients, month=month)
    r = await send_list(http, st.hub_url, "civil_affairs", month, f"assist-{seed}-{mon}", rows,
                        sims.secret("civil_affairs"))
    r.raise_for_status()
    await review_all(st, http)
    people = [x["id_number"] for x in rows]
    secret = sims.partners["assistance"].secret.get_secret_value()
    core_secret = st.partner_secret("core")
    first, last = month_bounds(mon)
    # a settlement core made last month without reporting it: the month's data has rows
    book.added[f"M{seed}{mon}"] = make_settlement(
        people[0], datetime(first.year, first.month, 15, 10, 30), 123_456,
        setl_id=f"M{seed}{mon}", name=book.name_of(people[0]))
    # 医疗费用查询: each recipient's last month, a stranger (404), a period before (403)
    answered = refused = 0

    async def ask(pid: str, start: date, end: date) -> httpx.Response:
        for _ in range(3):  # core unavailable (503): the platform asks again
            r = await query_expenses(http, st.hub_url, pid, start.isoformat(), end.isoformat(),
                                     secret)
            if r.status_code != 503:
                break
        return r

    for pid in people:
        answered += (await ask(pid, first, last)).status_code == 200
    for pid, start, end in ((make_id_number(rng), first, last),
                            (people[0], date(2000, 1, 1), date(2000, 1, 31))):
        refused += (await ask(pid, start, end)).status_code in (403, 404)
    # 结算费用同步: one settlement per recipient today, one reported twice, a stranger's
    before_platform = platform.log.snapshot()
    now = datetime(today.year, today.month, today.day, 9, 0)
    events = [make_settlement(pid, now + timedelta(minutes=i), 10_000 + 777 * i,
                              setl_id=f"E{seed}{today:%Y%m%d}{i}", name=book.name_of(pid))
              for i, pid in enumerate(people)]
    refs = [settlement_ref(e.setl_id) for e in events]
    platform.faults.append(Fault(kind="http_5xx", count=2, match=refs[0],
                                 operation="settlements"))
    platform.faults.append(Fault(kind="http_4xx", match=refs[-1], operation="settlements",
                                 text="结算信息不完整 (simulated)"))
    sent = rejected = replays = 0
    for i, e in enumerate([*events, events[0]]):
        r = await emit_settlement(http, st.hub_url, e, core_secret, seq=i, book=book)
        r.raise_for_status()
        if i < len(events):
            sent += 1
        else:
            replays += int(bool(r.json()["output"].get("duplicate")))
    stranger = make_settlement(make_id_number(rng), now, 5_000, setl_id=f"X{seed}{today:%Y%m%d}",
                               name="赵六")
    r = await emit_settlement(http, st.hub_url, stranger, core_secret, seq=99)
    sent += 1
    rejected += r.status_code == 422
    await wait_for(lambda: len(platform.log.since(before_platform, "settlement:")) >=
                   len(events) - 1, 60)

    async def sync_rejected() -> int:
        got = await http.get(f"{st.hub_url}/admin/assistance/settlements",
                             params={"sync_status": "rejected"}, headers=FIRST)
        return sum(1 for x in got.json()["settlements"] if x["id"] in refs)

    for _ in range(100):
        if await sync_rejected():
            break
        await asyncio.sleep(0.1)
    rejected += await sync_rejected()
    synced = platform.log.since(before_platform, "settlement:")
    sync_flow = Flow(sent=sent, delivered=len(synced), rejected=rejected,
                     duplicates=extra_effects(synced))
    # 医疗救助结算数据: the month, three runs (the first stopped by the platform)
    before_data = platform.log.snapshot()
    platform.faults.append(Fault(kind="http_5xx", count=1, operation="settlement-data"))
    url = f"{st.hub_url}/admin/assistance/settlement-runs"
    runs: list[tuple[int, dict[str, Any]]] = []
    final: dict[str, Any] = {}
    for _ in range(6):  # until complete (a platform or core failure: run it again)
        r = await http.post(url, json={"month": month}, headers=FIRST)
        runs.append((r.status_code, r.json()))
        if r.status_code == 200:
            final = r.json()
            break
    r = await http.post(url, json={"month": month}, headers=FIRST)  # again: nothing new
    runs.append((r.status_code, r.json()))
    data = platform.log.since(before_data, f"data:{month}:")
    data_flow = Flow(sent=int(final.get("rows", 0)), delivered=len(data),
                     duplicates=extra_effects(data))
    # 阳光惠民's 救助费用 and 机构 tables of the day (the hub's ticker, now)
    day = today.isoformat()
    for _ in range(3):  # core's 定点医疗机构 list unavailable: the next run pushes it
        await sunshine_now(st)
        if len(sun.table("institutions", day)) >= len(book.institutions):
            break
    held = (await http.get(f"{st.hub_url}/admin/assistance/settlements",
                           params={"limit": 1000}, headers=FIRST)).json()["settlements"]
    fees_sent = sum(1 for x in held if str(x["settled_at"])[:4] == str(today.year))
    fees = sun.tables_log.since({}, f"fees:{day}:")
    inst = sun.tables_log.since({}, f"institutions:{day}:")
    sun_flow = Flow(sent=fees_sent + len(book.institutions), delivered=len(fees) + len(inst),
                    duplicates=extra_effects(fees) + extra_effects(inst))
    flow = sync_flow + data_flow + sun_flow
    lines = [
        f"  救助平台 费用查询: answered={answered} refused={refused} (404 not a 困难人员, "
        "403 outside the assistance period)",
        f"  救助平台 结算费用同步: core events={sent} platform took={len(synced)} "
        f"rejected={rejected} replayed events={replays}",
        f"  救助平台 结算数据 {month}: runs={[c for c, _ in runs]} rows={final.get('rows')} "
        f"platform took={len(data)} check={sims.platform.month_check(month)}",
        f"  阳光惠民 tables {day}: 救助费用 {len(fees)}/{fees_sent}, "
        f"机构 {len(inst)}/{len(book.institutions)}",
    ]
    return lines, flow
