"""Fault test d: RabbitMQ is restarted in the middle of a batch.

Every message must still reach exactly one outcome, with no side effect twice
(counted at the simulators). The hub rebuilds its broker client after the
reconnection; deliveries that were unacked when the broker went away are
delivered again and absorbed by idempotency and by the partners' serial
deduplication.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.faults.hubproc import FaultRun, batch_through_fault

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N = int(os.environ.get("FAULT_MESSAGES", "1000"))


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, timeout=120,
                   stdout=subprocess.DEVNULL)


async def _restart_broker(_run: FaultRun) -> None:
    await asyncio.to_thread(_rabbitmqctl, "stop_app")
    await asyncio.sleep(2)
    await asyncio.to_thread(_rabbitmqctl, "start_app")
    await asyncio.to_thread(_rabbitmqctl, "await_startup")


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs a local RabbitMQ node")
async def test_broker_restart_mid_batch_exactly_one_outcome_each(tmp_path: Path) -> None:
    res = await batch_through_fault(tmp_path, "rmq", N, _restart_broker)
    print(res.report("broker-restart test", N))
    assert res.counts.get("delivered", 0) == N, res.counts
    assert set(res.counts) <= {"delivered", "duplicate"}, res.counts
    assert res.tax["distinct"] == N and not res.tax["duplicates"]
    assert not res.core["duplicates"]
