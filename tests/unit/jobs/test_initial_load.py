"""jobs.initial_load without sockets: the real desk behind the real codec, effects counted
at the desk (the partner), and the manifest that makes a rerun continue."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from adapters.tax.initial_load import (
    InitialLoadClient,
    build_load_request,
    parse_load_response,
)
from contracts.errors import PartnerUnavailable, ValidationFailed
from contracts.initial_load import LoadKind, LoadResult, LoadRow
from jobs.initial_load import ChunkRetry, LoadProgress, manifest_path, run_initial_load
from simulators.initial_load import InitialLoadDesk, row_rejections
from simulators.simkit import Fault, SimState
from tools.initial_load_cli import write_sample

QUICK = ChunkRetry(attempts=3, min_wait_s=0.0, max_wait_s=0.0)


class DeskPort:
    """InitialLoadPort straight into a desk through the SOAP codec (no sockets)."""

    def __init__(self, desk: InitialLoadDesk, *, crash_after: int | None = None) -> None:
        self.desk = desk
        self.calls: list[int] = []
        self.crash_after = crash_after

    async def submit(self, kind: LoadKind, batch_id: str, chunk_no: int, chunk_count: int,
                     rows: Sequence[tuple[int, LoadRow]]) -> list[LoadResult]:
        self.calls.append(chunk_no)
        status, body = await self.desk.handle("", build_load_request(
            kind, batch_id, chunk_no, chunk_count, rows))
        if self.crash_after is not None and len(self.calls) > self.crash_after:
            # tax made the effect, the hub dies before it hears the answer
            raise RuntimeError("simulated crash")
        if status != 200:
            raise PartnerUnavailable(f"HTTP {status}")
        return parse_load_response(kind, body, batch_id=batch_id, chunk_no=chunk_no)


def rows_of(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))[1:]


async def test_n_rows_with_k_bad_make_n_minus_k_effects_and_reports(tmp_path: Path) -> None:
    sample = write_sample("resident", tmp_path / "res.csv", 53, bad=4)
    desk = InitialLoadDesk()
    seen: list[LoadProgress] = []
    summary = await run_initial_load("resident", sample.path, DeskPort(desk), tmp_path / "out",
                                     chunk_size=10, concurrency=3, formats=("csv",),
                                     progress=lambda p: seen.append(LoadProgress(**p.view())))
    assert (summary.total_rows, summary.valid_rows, summary.invalid_rows) == (53, 49, 4)
    assert (summary.sent, summary.ok, summary.failed) == (49, 49, 0)
    assert (summary.chunks, summary.chunks_done, summary.chunks_failed) == (5, 5, 0)
    assert desk.effect_count("resident") == 49 and desk.duplicates() == {}
    assert desk.chunks == 5 and desk.replays == 0
    assert seen[-1].view() == {"rows_total": 49, "rows_sent": 49, "rows_ok": 49,
                               "rows_failed": 0, "chunks_total": 5, "chunks_done": 5}
    invalid = rows_of(summary.files["invalid.csv"])
    assert [int(r[0]) for r in invalid] == sample.bad_rows
    assert {r[1] for r in invalid} == {"身份证号"} and all("校验位" in r[2] for r in invalid)
    assert len(rows_of(summary.files["success.csv"])) == 49
    assert rows_of(summary.files["failure.csv"]) == []


async def test_a_crash_midway_then_a_rerun_continues_without_a_duplicate_effect(
        tmp_path: Path) -> None:
    sample = write_sample("flexible", tmp_path / "flex.csv", 100, bad=7)
    desk = InitialLoadDesk()
    out = tmp_path / "out"
    first = DeskPort(desk, crash_after=4)
    with pytest.raises(RuntimeError, match="simulated crash"):
        await run_initial_load("flexible", sample.path, first, out, chunk_size=10,
                               concurrency=1, formats=("csv",))
    assert first.calls == [1, 2, 3, 4, 5]  # chunk 5 reached tax, its answer did not
    assert desk.effect_count("flexible") == 50
    manifest = json.loads(manifest_path(out, "flexible", sample.path).read_text("utf-8"))
    assert sorted(manifest["chunks"]) == ["1", "2", "3", "4"]
    assert "身份证" not in json.dumps(manifest) and sample.rows[0]["身份证号"] \
        not in json.dumps(manifest)

    second = DeskPort(desk)
    summary = await run_initial_load("flexible", sample.path, second, out, chunk_size=10,
                                     concurrency=2, formats=("csv",))
    assert sorted(second.calls) == [5, 6, 7, 8, 9, 10]  # 1-4 were acknowledged
    assert desk.replays == 1  # chunk 5 again: tax replays, no second effect
    assert desk.effect_count("flexible") == 93 and len(desk.effects) == 93
    assert desk.duplicates() == {}
    assert (summary.chunks_skipped, summary.chunks_done, summary.sent, summary.ok) == \
        (4, 10, 93, 93)
    assert len(rows_of(summary.files["success.csv"])) == 93

    third = DeskPort(desk)  # a finished job run again sends nothing
    again = await run_initial_load("flexible", sample.path, third, out, chunk_size=10,
                                   formats=("csv",))
    assert third.calls == [] and again.ok == 93 and desk.effect_count("flexible") == 93


async def test_without_the_manifest_a_rerun_is_replayed_by_tax_not_applied(
        tmp_path: Path) -> None:
    sample = write_sample("unit", tmp_path / "units.csv", 25, bad=2)
    desk = InitialLoadDesk()
    await run_initial_load("unit", sample.path, DeskPort(desk), tmp_path / "a", chunk_size=10,
                           formats=("csv",))
    port = DeskPort(desk)
    summary = await run_initial_load("unit", sample.path, port, tmp_path / "b",
                                     chunk_size=10, formats=("csv",))
    assert sorted(port.calls) == [1, 2, 3] and desk.replays == 3
    assert desk.effect_count("unit") == 23 and desk.duplicates() == {}
    assert summary.ok == 23


async def test_tax_row_refusals_and_a_rejected_row_fault_land_in_the_failure_file(
        tmp_path: Path) -> None:
    units = write_sample("unit", tmp_path / "units.csv", 2)
    codes = [r["统一社会信用代码"] for r in units.rows]
    staff = write_sample("employee", tmp_path / "staff.csv", 30, bad=3, units=codes)
    state = SimState()
    desk = InitialLoadDesk(draw=state.draw, row_draw=row_rejections(state))
    desk.preload_unit(codes[0])  # the second unit is unknown to tax: TXL11
    victim = staff.rows[4]["身份证号"]
    state.faults.append(Fault(kind="reject", match=victim, code="TXR99", text="人工拒绝"))
    summary = await run_initial_load("employee", staff.path, DeskPort(desk), tmp_path / "out",
                                     chunk_size=8, formats=("csv",))
    in_unit_0 = [r for r in staff.good() if r["统一社会信用代码"] == codes[0]]
    assert summary.valid_rows == 27
    assert desk.effect_count("employee") == len(in_unit_0) - 1
    assert summary.ok == len(in_unit_0) - 1 and summary.failed == 27 - summary.ok
    failures = rows_of(summary.files["failure.csv"])
    assert sorted(r[4] for r in failures) == sorted(
        ["TXL11"] * (27 - len(in_unit_0)) + ["TXR99"])
    assert [r[1] for r in failures if r[4] == "TXR99"] == [victim]


async def test_a_chunk_undelivered_after_retries_is_not_acknowledged_and_a_rerun_sends_it(
        tmp_path: Path) -> None:
    sample = write_sample("resident", tmp_path / "r.csv", 30)
    state = SimState()
    desk = InitialLoadDesk(draw=state.draw)
    state.faults.append(Fault(kind="http_5xx", count=3, match="-2"))
    out = tmp_path / "out"
    first = await run_initial_load("resident", sample.path, DeskPort(desk), out,
                                   chunk_size=10, concurrency=1, retry=QUICK,
                                   formats=("csv",))
    assert (first.chunks_failed, first.sent, first.ok, first.failed, first.retries) == \
        (1, 20, 20, 10, 2)
    assert desk.effect_count("resident") == 20
    port = DeskPort(desk)
    second = await run_initial_load("resident", sample.path, port, out, chunk_size=10,
                                    retry=QUICK, formats=("csv",))
    assert port.calls == [2] and (second.chunks_failed, second.ok) == (0, 30)
    assert desk.effect_count("resident") == 30 and desk.duplicates() == {}


async def test_a_whole_chunk_rejected_is_acknowledged_with_every_row_failed(
        tmp_path: Path) -> None:
    sample = write_sample("flexible", tmp_path / "f.csv", 12)
    state = SimState()
    desk = InitialLoadDesk(draw=state.draw)
    state.faults.append(Fault(kind="reject", count=1, code="TXB01", text="批次暂停受理"))
    summary = await run_initial_load("flexible", sample.path, DeskPort(desk),
                                     tmp_path / "out", chunk_size=5, concurrency=1,
                                     formats=("csv",))
    assert (summary.ok, summary.failed, summary.chunks_failed, summary.chunks_done) == \
        (7, 5, 0, 3)
    assert {r[4] for r in rows_of(summary.files["failure.csv"])} == {"TXB01"}
    assert desk.effect_count("flexible") == 7


async def test_suspension_needs_an_active_employment_and_happens_once(tmp_path: Path) -> None:
    unit = write_sample("unit", tmp_path / "u.csv", 1).rows[0]["统一社会信用代码"]
    staff = write_sample("employee", tmp_path / "e.csv", 6, units=[unit])
    desk = InitialLoadDesk()
    desk.preload_unit(unit)
    for r in staff.rows[:5]:
        desk.preload_employee(unit, r["身份证号"], r["姓名"])
    people = [(unit, r["身份证号"], r["姓名"]) for r in staff.rows]
    people[1] = (unit, people[1][1], "错名字")
    sample = write_sample("employee_suspend", tmp_path / "s.csv", 0, people=people)
    summary = await run_initial_load("employee_suspend", sample.path, DeskPort(desk),
                                     tmp_path / "out", chunk_size=4, formats=("csv",))
    assert (summary.valid_rows, summary.ok, summary.failed) == (6, 4, 2)
    assert sorted(r[4] for r in rows_of(summary.files["failure.csv"])) == ["TXL41", "TXL43"]
    assert desk.effect_count("employee_suspend") == 4


async def test_an_unreadable_file_sends_nothing(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("姓名,手机号\n张三,13800000000\n", encoding="utf-8")
    desk = InitialLoadDesk()
    with pytest.raises(ValidationFailed) as err:
        await run_initial_load("resident", path, DeskPort(desk), tmp_path / "out")
    assert err.value.errors[0][0] == "表头" and "身份证号" in err.value.errors[0][1]
    assert desk.calls == 0


def test_the_client_type_satisfies_the_port() -> None:
    from adapters.tax.initial_load import InitialLoadPort

    port: InitialLoadPort = InitialLoadClient("http://tax/tax/ws")
    assert port is not None
