"""The F8 高额费用预警 part of the demo: one month run twice, counted at the departments.

``warnings_round`` gives core a population exercising every rule
(``simulators.warnings_recv.sample_people``), runs the month through the admin API
as operations, waits until every department acknowledged its list, then runs the
same month again and shows that the second run sends nothing (no call reaches any
department). Counts come from the departments' simulator, never the hub's log.
"""

from __future__ import annotations

import asyncio
import time
from datetime import date
from typing import Any

import httpx

from simulators.harness import Stack
from simulators.warnings_recv import sample_people
from tools.demo_flows import Flow

__all__ = ["demo_month", "run_month", "wait_acknowledged", "warnings_round"]

OPS = {"Authorization": "Bearer dev-ops"}


def demo_month(st: Stack) -> str:
    """This month when its year has warning lines, else December of the latest such year."""
    today = date.today()
    years = st.settings.warnings.years
    if str(today.year) in years:
        return f"{today:%Y%m}"
    return f"{max(years)}12"


async def run_month(st: Stack, http: httpx.AsyncClient, month: str,
                    headers: dict[str, str] | None = None) -> dict[str, Any]:
    for _ in range(10):  # 503: core did not answer (the demo's core fails 5% of calls)
        r = await http.post(f"{st.hub_url}/admin/warnings/runs", json={"month": month},
                            headers=headers or OPS)
        if r.status_code != 503:
            break
        await asyncio.sleep(0.2)
    r.raise_for_status()
    return r.json()  # type: ignore[no-any-return]


async def wait_acknowledged(st: Stack, http: httpx.AsyncClient, month: str,
                            timeout: float = 30.0) -> dict[str, Any]:
    """The month's status once every warning is acknowledged, or at the timeout."""
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = await http.get(f"{st.hub_url}/admin/warnings/runs/{month}", headers=OPS)
        r.raise_for_status()
        status = r.json()
        if status["total"] and status["acknowledged"] == status["total"]:
            break
        await asyncio.sleep(0.1)
    return status


async def warnings_round(st: Stack, http: httpx.AsyncClient) -> tuple[list[str], Flow]:
    """F8: one month run twice; the second run must send nothing."""
    assert st.warn_state is not None, "the stack runs no department simulator"
    month = demo_month(st)
    year = int(month[:4])
    lines = st.settings.warnings.lines(year)
    assert lines is not None
    st.store.self_paid[year] = sample_people(year, lines)
    log = st.warn_state.log
    before = log.snapshot()
    first = await run_month(st, http, month)
    status = await wait_acknowledged(st, http, month)
    calls = log.calls
    window = log.snapshot()
    second = await run_month(st, http, month)
    await asyncio.sleep(0.5)
    effects = log.summary_since(before)
    again = sum(log.since(window).values())
    dead = sum(d.get("dead", 0) + d.get("rejected", 0) for d in status["departments"].values())
    flow = Flow(sent=first["published"], delivered=effects["distinct"], rejected=0,
                failed=dead, duplicates=effects["extra"])
    per_dept = ", ".join(f"{d}={sum(s.values())}" for d, s in sorted(
        status["departments"].items()))
    out = [f"  F8 run {month}: {first['people']} people, {first['warnings']} warnings "
           f"({per_dept}), acknowledged={status['acknowledged']}",
           f"  F8 second run {month}: published={second['published']} new effects={again} "
           f"calls since={log.calls - calls}"]
    return out, flow
