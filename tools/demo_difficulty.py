"""F7 困难人员 in the demo: a month's lists from every department, through 初审 and 复核,
to the 医疗救助平台 and core, with the status back to each department.

``difficulty_round(st, http)`` runs on a ``simulators.harness`` stack and returns its
lines and the ``Flow`` counted at the simulators: ``sent`` = every row the departments
sent (their systems and one GBK file a caseworker imported), ``delivered`` = rows whose
department heard ``synced`` and whose 进入 core shows, ``rejected`` = rows refused in
the department's receipt (row, field, reason) or heard ``refused``; the rest is dead.
``duplicates`` = extra effects at core (H4001), the platform and the departments; each
list is pushed twice on purpose, the second push a replay.
"""

from __future__ import annotations

import random
from typing import Any

import httpx

from contracts.clock import today_beijing
from contracts.difficulty import COLUMNS, DEPARTMENTS
from simulators.departments import make_records, send_list
from simulators.harness import Stack
from tools.demo_flows import Flow, extra_effects, wait_for

__all__ = ["difficulty_round", "review_all"]

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
