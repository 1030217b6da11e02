"""Student batches over real sockets: the desk under uvicorn, the real client and pipeline.

Needs only loopback sockets (no RabbitMQ or Redis). Effects are counted at the
desk (the partner), never from the hub's own results.
"""

from __future__ import annotations

import asyncio
import csv
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from adapters.tax.student_batch import StudentBatchClient
from bench.student_batch import make_students_xlsx
from contracts.ids import make_id_number
from contracts.student_batch import StudentEnrollRow
from jobs.student_batch import ChunkRetry, read_and_validate, run_batch
from simulators.simkit import Fault, SimState
from simulators.student_batch import (
    DEFAULT_DIFFICULTY_SUFFIXES,
    StudentBatchDesk,
    create_app,
)
from simulators.tax_rules import KNOWN_COMMUNITIES
from tests.support.servers import serve_app
from tools import student_batch_cli

pytestmark = pytest.mark.integration

QUICK = ChunkRetry(attempts=4, min_wait_s=0.01, max_wait_s=0.05)


@dataclass
class Rig:
    url: str
    state: SimState
    desk: StudentBatchDesk
    client: StudentBatchClient


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    state = SimState()
    desk = StudentBatchDesk(draw=state.draw)
    async with serve_app(create_app(desk)) as base_url, \
            StudentBatchClient(f"{base_url}/tax/ws", timeout=0.5) as client:
        yield Rig(f"{base_url}/tax/ws", state, desk, client)


def failure_codes(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    return [row[header.index("原因代码")] for row in rows]


async def test_2000_rows_split_matches_the_desk_and_503_twice_is_retried(
        rig: Rig, tmp_path: Path) -> None:
    source = tmp_path / "univ.xlsx"
    make_students_xlsx(source, 2000, seed=11, difficulty=100, unknown_community=20)
    rig.state.faults.append(Fault(kind="http_5xx", count=2, match="UNIV2026-3"))

    summary = await run_batch("enroll", source, rig.client, tmp_path / "out",
                              batch_id="UNIV2026", chunk_size=500, concurrency=4, retry=QUICK)

    assert (summary.total_rows, summary.invalid_rows, summary.chunks) == (2000, 0, 4)
    assert (summary.retries, summary.chunks_failed) == (2, 0)
    assert rig.state.log.calls == 4 + 2 and rig.desk.replays == 0
    # every enrolled student was enrolled exactly once, and the split agrees with the desk
    assert set(rig.desk.enrolled.values()) == {1}
    assert summary.success + summary.difficulty == len(rig.desk.enrolled)
    assert summary.failure == 20
    assert set(failure_codes(summary.files["failure.csv"])) == {"TX301"}
    rows = [r for _, r in read_and_validate("enroll", source).valid]
    known = [r for r in rows if isinstance(r, StudentEnrollRow)
             and r.community in KNOWN_COMMUNITIES]
    assert len(known) == len(rig.desk.enrolled) == 1980
    flagged = [r for r in known if r.difficulty_type
               or r.id_number[-5:-1] in DEFAULT_DIFFICULTY_SUFFIXES]
    assert summary.difficulty == len(flagged) >= 100
    assert rig.desk.summary()["duplicates"] == {}


async def test_lost_answer_is_retried_and_replayed_without_a_second_effect(
        rig: Rig, tmp_path: Path) -> None:
    source = tmp_path / "small.xlsx"
    make_students_xlsx(source, 30, seed=5, difficulty=3, unknown_community=2)
    # chunk 2's effect is made, then the answer is held past the client's 0.5 s timeout
    rig.state.faults.append(Fault(kind="timeout", delay_s=0.8, count=1, match="LOST-2"))

    summary = await run_batch("enroll", source, rig.client, tmp_path / "out",
                              batch_id="LOST", chunk_size=10, retry=QUICK)

    assert (summary.retries, summary.chunks_failed, rig.desk.replays) == (1, 0, 1)
    assert summary.success + summary.difficulty == len(rig.desk.enrolled) == 28
    assert set(rig.desk.enrolled.values()) == {1}

    # the same chunk once more: the identical answer, still no second effect
    chunk2 = read_and_validate("enroll", source).valid[10:20]
    first = await rig.client.submit("enroll", "LOST", 2, 3, chunk2)
    again = await rig.client.submit("enroll", "LOST", 2, 3, chunk2)
    assert first == again and len(first) == 10
    assert rig.desk.replays == 3
    assert set(rig.desk.enrolled.values()) == {1}


async def test_cli_stop_batch_end_to_end(rig: Rig, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(8)
    today = datetime.now(timezone(timedelta(hours=8))).date()
    ids = [make_id_number(rng, born=date(2002, 6, 1 + i)) for i in range(5)]
    for id_number in ids[:4]:
        rig.desk.preload(id_number, "陈晓东", str(today.year))
    source = tmp_path / "graduates.csv"
    with source.open("w", encoding="gbk", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["身份证号", "姓名", "停保日期", "停保原因", "备注"])
        writer.writerows([[i, "陈晓东", today.isoformat(), "毕业", ""] for i in ids])
        writer.writerow([ids[0], "陈晓东", today.isoformat(), "毕业", "重复行"])

    code = await asyncio.to_thread(student_batch_cli.main, [
        "stop", str(source), "--tax-url", rig.url, "--out", str(tmp_path / "out"),
        "--chunk", "2"])

    out = capsys.readouterr().out
    assert code == student_batch_cli.EXIT_OK, out
    assert "success 4, failure 1" in out and "invalid 1" in out
    assert dict(rig.desk.stopped) == dict.fromkeys(ids[:4], 1)
    assert failure_codes(tmp_path / "out" / "graduates.failure.csv") == ["TX312"]
