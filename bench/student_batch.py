"""Bench: 大学生批量参保 of a 10,000-row XLSX, end to end over real sockets.

Generates the university's file (valid synthetic students: checksummed IDs
from ``make_id_number``, a few hundred with 困难人员类别 and a few dozen in
communities tax does not know), serves the tax desk with uvicorn on a free
loopback port, then times the pipeline from opening the XLSX to the last
acknowledgement and the result files written. Target: under 30 s.

    .venv/bin/python -m bench.student_batch [--rows 10000] [--chunk 500] [--concurrency 4]

The last line is machine-readable: ``student_batch: seconds=S rows=N``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

if __package__ in (None, ""):  # allow `python bench/student_batch.py` as well as `-m`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import openpyxl

from adapters.tax.student_batch import StudentBatchClient
from contracts.clock import today_beijing
from contracts.ids import NANJING_DIVISIONS, make_id_number
from contracts.student_batch import DIFFICULTY_TYPES, ENROLL_COLUMNS
from jobs.student_batch import BatchSummary, run_batch
from simulators.serving import serve_app
from simulators.student_batch import StudentBatchDesk, create_app
from simulators.tax_rules import community_for

__all__ = ["main", "make_students_xlsx", "run"]

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
_GIVEN = "伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍鹏辉俊宇浩然子涵思雨欣怡"
_SCHOOLS = (("南京大学", "10284"), ("东南大学", "10286"), ("南京航空航天大学", "10287"),
            ("南京理工大学", "10288"), ("河海大学", "10294"), ("南京师范大学", "10319"))


def make_students_xlsx(path: Path, rows: int, *, seed: int = 2025, difficulty: int = 300,
                       unknown_community: int = 40, insure_year: int | None = None) -> None:
    """A university's 大学生批量参保 file: ``rows`` valid rows, unique ID numbers."""
    rng = random.Random(seed)
    year = insure_year or today_beijing().year + 1
    divisions = [d for d in NANJING_DIVISIONS if d != "320100"]
    flagged = set(rng.sample(range(rows), difficulty))
    unknown = set(rng.sample(sorted(set(range(rows)) - flagged), unknown_community))
    seen: set[str] = set()
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("大学生参保")
    ws.append(list(ENROLL_COLUMNS))
    kinds = sorted(DIFFICULTY_TYPES)
    for i in range(rows):
        id_number = ""
        while not id_number or id_number in seen:
            id_number = make_id_number(rng, born=date(rng.randint(2002, 2007),
                                                      rng.randint(1, 12), rng.randint(1, 28)))
        seen.add(id_number)
        school, code = _SCHOOLS[i % len(_SCHOOLS)]
        division = rng.choice(divisions)
        community = f"{division}099099" if i in unknown else community_for(division, i)
        entry = rng.choice((year - 4, year - 3, year - 2, year - 1))
        name = rng.choice(_SURNAMES) + "".join(rng.choices(_GIVEN, k=rng.randint(1, 2)))
        ws.append([school, code, f"{code}{entry}{i:05d}", id_number, name, None, None,
                   f"1{rng.choice('3578')}{rng.randrange(10**9):09d}", f"{entry}09", str(year),
                   community, rng.choice(kinds) if i in flagged else None])
    wb.save(path)
    wb.close()


async def run(path: Path, out_dir: Path, *, chunk: int,
              concurrency: int) -> tuple[BatchSummary, StudentBatchDesk]:
    """Serve the desk on a real socket and run the pipeline against it."""
    desk = StudentBatchDesk()
    async with serve_app(create_app(desk)) as base_url, \
            StudentBatchClient(f"{base_url}/tax/ws", timeout=60.0) as client:
        summary = await run_batch("enroll", path, client, out_dir, chunk_size=chunk,
                                  concurrency=concurrency)
    return summary, desk


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--rows", type=int, default=10_000)
    p.add_argument("--chunk", type=int, default=500)
    p.add_argument("--concurrency", type=int, default=4)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="student_batch_") as tmp:
        source = Path(tmp) / "students.xlsx"
        started = time.perf_counter()
        make_students_xlsx(source, args.rows)
        print(f"student_batch: generated {args.rows} rows in "
              f"{time.perf_counter() - started:.2f}s ({source.stat().st_size} bytes)")
        summary, desk = asyncio.run(run(source, Path(tmp) / "out", chunk=args.chunk,
                                        concurrency=args.concurrency))
    tax = desk.summary()
    print(f"student_batch: read_validate_seconds={summary.read_seconds:.2f} "
          f"tax_seconds={summary.submit_seconds:.2f} chunks={summary.chunks} "
          f"retries={summary.retries} desk_replays={tax['replays']}")
    print(f"student_batch: success={summary.success} failure={summary.failure} "
          f"difficulty={summary.difficulty} invalid={summary.invalid_rows} "
          f"desk_enrolled={tax['enrolled']}")
    print(f"student_batch: seconds={summary.total_seconds:.2f} rows={summary.total_rows}")
    return 0 if summary.total_rows == args.rows and not summary.chunks_failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
