"""统模式 initial load and 职工批量暂停 over real sockets: the whole tax simulator under
uvicorn (its ``/tax/ws`` routes these operations to the initial-load desk), the real
client, the CLI and the job. Effects are counted at the simulator's EffectLog.

Needs only loopback sockets (no RabbitMQ, Redis or SQL).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from jobs.initial_load import ChunkRetry, LoadProgress, manifest_path
from services.initial_loads import load_file
from simulators.initial_load import InitialLoadDesk
from simulators.simkit import Fault, SimState
from simulators.tax import create_app
from tests.support.servers import serve_app
from tools import initial_load_cli
from tools.initial_load_cli import write_sample

pytestmark = pytest.mark.integration

QUICK = ChunkRetry(attempts=4, min_wait_s=0.01, max_wait_s=0.05)


@dataclass
class Tax:
    url: str
    state: SimState
    desk: InitialLoadDesk


@pytest.fixture
async def tax() -> AsyncIterator[Tax]:
    state = SimState()
    app = create_app(state, callback_url=None)
    async with serve_app(app) as base_url:
        yield Tax(f"{base_url}/tax/ws", state, app.state.tax.load_desk)


def effects(tax: Tax, operation: str) -> tuple[int, int, int]:
    """(effects, distinct keys, duplicate effects) of one operation at the simulator."""
    window = tax.state.log.summary_since({}, operation + ":")
    return window["effects"], window["distinct"], window["extra"]


async def test_units_then_employees_then_suspension_through_the_cli_with_faults(
        tax: Tax, tmp_path: Path) -> None:
    out = tmp_path / "out"
    units = write_sample("unit", tmp_path / "units.csv", 40, bad=2, seed=1)
    tax.state.faults.append(Fault(kind="http_5xx", count=2, match="-2",
                                  operation="InitialLoadUnit"))
    code = await asyncio.to_thread(initial_load_cli.main, [
        "unit", str(units.path), "--tax-url", tax.url, "--out", str(out), "--chunk", "10",
        "--no-progress"])
    assert code == initial_load_cli.EXIT_OK
    assert effects(tax, "InitialLoadUnit") == (38, 38, 0)

    codes = [r["统一社会信用代码"] for r in units.good()]
    staff = write_sample("employee", tmp_path / "staff.csv", 1500, bad=11, seed=2, units=codes)
    # chunk 3's answer is lost after tax applied it: the resend is replayed
    tax.state.faults.append(Fault(kind="timeout", count=1, match="-3", delay_s=1.0,
                                  operation="InitialLoadEmployee"))
    args = initial_load_cli.parse_args(["employee", str(staff.path), "--tax-url", tax.url,
                                        "--out", str(out), "--timeout", "0.5",
                                        "--no-progress"])
    summary = await initial_load_cli.run(args)
    assert (summary.valid_rows, summary.invalid_rows, summary.ok, summary.failed) == \
        (1489, 11, 1489, 0)
    assert summary.retries == 1 and summary.chunks_failed == 0
    assert effects(tax, "InitialLoadEmployee") == (1489, 1489, 0)
    assert tax.desk.replays >= 1

    people = [(r["统一社会信用代码"], r["身份证号"], r["姓名"]) for r in staff.good()[:30]]
    stops = write_sample("employee_suspend", tmp_path / "stops.csv", 0, people=people)
    summary = await load_file("employee_suspend", stops.path, out, tax=tax.url, chunk_size=7,
                              formats=("csv",))
    assert (summary.ok, summary.failed) == (30, 0)
    assert effects(tax, "EmployeeBatchSuspend") == (30, 30, 0)
    assert tax.state.log.summary()["duplicates"] == {}


async def test_a_job_cancelled_midway_continues_on_rerun_with_no_duplicate_effect(
        tax: Tax, tmp_path: Path) -> None:
    sample = write_sample("resident", tmp_path / "res.csv", 3000, bad=17, seed=4)
    out = tmp_path / "out"
    tax.state.faults.append(Fault(kind="slow", rate=1.0, delay_s=0.05))
    acknowledged = asyncio.Event()

    def progress(p: LoadProgress) -> None:
        if p.chunks_done >= 2:
            acknowledged.set()

    job = asyncio.create_task(load_file("resident", sample.path, out, tax=tax.url,
                                        chunk_size=250, concurrency=3, retry=QUICK,
                                        progress=progress, formats=("csv",)))
    await acknowledged.wait()
    job.cancel()  # the operator's Ctrl-C, or the hub going down
    with pytest.raises(asyncio.CancelledError):
        await job
    done = json.loads(manifest_path(out, "resident", sample.path).read_text("utf-8"))["chunks"]
    assert 2 <= len(done) < 12
    before, _, _ = effects(tax, "InitialLoadResident")
    assert before < 2983

    tax.state.faults.clear()
    summary = await load_file("resident", sample.path, out, tax=tax.url, chunk_size=250,
                              concurrency=3, retry=QUICK, formats=("csv",))
    assert summary.chunks_skipped == len(done) and summary.chunks_done == 12
    assert (summary.valid_rows, summary.ok, summary.failed) == (2983, 2983, 0)
    assert effects(tax, "InitialLoadResident") == (2983, 2983, 0)
    assert tax.desk.duplicates() == {}


async def test_the_simulator_fault_switches_reach_the_desk_over_http(tax: Tax) -> None:
    async with httpx.AsyncClient() as http:
        base = tax.url.removesuffix("/tax/ws")
        got = await http.post(f"{base}/_sim/faults",
                              json={"kind": "reject", "match": "X", "code": "TXR1"})
        assert got.status_code == 200
    assert tax.desk.row_draw is not None
    assert tax.desk.row_draw("InitialLoadUnit:S-1:X", "InitialLoadUnit") is not None
