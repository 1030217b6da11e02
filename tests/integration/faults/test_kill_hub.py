"""Fault test c: the hub is killed with SIGKILL mid-batch and restarted.

Each message must reach exactly one outcome and no side effect may happen
twice. Side effects are counted at the simulators (per business key), not in
the hub's own log. Core keeps sending through the outage, re-posting refused
events; a re-sent event is closed as a duplicate of the first, never enrolled twice.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.integration.faults.hubproc import FaultRun, batch_through_fault, start_hub, wait_http

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N = int(os.environ.get("FAULT_MESSAGES", "1000"))


async def _kill_and_restart(run: FaultRun) -> None:
    run.hub.send_signal(signal.SIGKILL)
    run.hub.wait(10)
    run.hub = start_hub(run.env)
    await wait_http(f"{run.hub_url}/health")


async def test_sigkill_mid_batch_then_restart_exactly_one_outcome_each(tmp_path: Path) -> None:
    res = await batch_through_fault(tmp_path, "kill", N, _kill_and_restart)
    print(res.report("kill test", N))
    assert res.counts.get("delivered", 0) == N, res.counts
    assert set(res.counts) <= {"delivered", "duplicate"}, res.counts
    assert res.tax["distinct"] == N and not res.tax["duplicates"]
    assert not res.core["duplicates"]
