"""Command line for the 统模式 initial load and 职工批量暂停: a file -> tax, resumable.

    python -m tools.initial_load_cli unit units.xlsx --tax-url http://tax/tax/ws --out out/
    python -m tools.initial_load_cli employee staff.csv --tax-url ... --out out/ --chunk 500
    python -m tools.initial_load_cli employee_suspend stops.xlsx --tax-url ... --out out/

Kinds: unit (单位), employee (职工), flexible (灵活就业), resident (居民),
employee_suspend (职工批量暂停). Writes ``{stem}.{kind}.invalid``, ``.success`` and
``.failure`` (CSV and XLSX) and ``{stem}.{kind}.manifest.json`` into ``--out`` and
prints the summary. Interrupted (Ctrl-C, a crash)? Run the same command again: the
chunks tax acknowledged are skipped (``--restart`` ignores the manifest; tax still
replays what it has seen). Exit codes: 0 the file was processed (rows may have
failed: see the files), 2 the file could not be read at all (nothing was sent), 3
some chunks never reached tax after their retries (run it again to send them).
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Final, cast

from tqdm import tqdm

from adapters.tax.initial_load import InitialLoadClient
from contracts.clock import today_beijing
from contracts.ids import make_credit_code, make_id_number
from contracts.initial_load import COLUMNS, DEFAULT_CHUNK_ROWS, KINDS, LoadKind
from jobs.initial_load import ChunkRetry, LoadProgress, LoadSummary, run_initial_load
from simulators.tax_rules import KNOWN_COMMUNITIES
from tools.student_batch_cli import (
    EXIT_CHUNKS_FAILED,
    EXIT_OK,
    EXIT_UNREADABLE,
    _chunk,
    report,
)

__all__ = ["EXIT_CHUNKS_FAILED", "EXIT_OK", "EXIT_UNREADABLE", "Sample", "main", "parse_args",
           "run", "write_sample"]



_SURNAMES: Final = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN: Final = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"


@dataclass
class Sample:
    """A synthetic file (checksummed, never real identities) and what it holds."""

    path: Path
    kind: LoadKind
    rows: list[dict[str, str]] = field(default_factory=list)
    """Cells by Chinese column, in file order (row ``i`` is file row ``i + 2``)."""
    bad_rows: list[int] = field(default_factory=list)
    """File row numbers with a wrong check character (ID number or credit code)."""

    def good(self) -> list[dict[str, str]]:
        bad = set(self.bad_rows)
        return [r for i, r in enumerate(self.rows, start=2) if i not in bad]


def _person(rng: random.Random, seen: set[str]) -> tuple[str, str]:
    while (id_number := make_id_number(rng, born=date(rng.randint(1965, 2000),
                                                      rng.randint(1, 12), rng.randint(1, 28)))
           ) in seen:
        pass
    seen.add(id_number)
    return id_number, rng.choice(_SURNAMES) + "".join(rng.choices(_GIVEN, k=rng.randint(1, 2)))


def _spoil(code: str) -> str:
    """The same code with another check character (the checksum then fails)."""
    return code[:17] + ("1" if code[17] != "1" else "2")


def write_sample(kind: LoadKind, path: Path, rows: int, *, bad: int = 0, seed: int = 7,
                 units: Sequence[str] = (),
                 people: Sequence[tuple[str, str, str]] = ()) -> Sample:
    """A CSV of ``rows`` rows of ``kind`` (UTF-8 with BOM), ``bad`` of them with a spoiled
    check character, spread evenly. ``units``: credit codes employees belong to (default:
    one new unit); ``people``: (credit code, ID number, name) to suspend
    (``employee_suspend``: one row each, ``rows`` is ignored)."""
    rng = random.Random(seed)
    seen: set[str] = set()
    this_year = today_beijing().year
    units = list(units) or [make_credit_code(rng)]
    if kind == "employee_suspend":
        rows = len(people)
    out = Sample(path, kind)
    for i in range(rows):
        if kind == "unit":
            cells = {"统一社会信用代码": make_credit_code(rng),
                     "单位名称": f"南京存量测试{i + 1}号有限公司", "单位类型": "10",
                     "法定代表人": _person(rng, seen)[1], "所属区划": "320102",
                     "参保险种": "310,510", "参保开始年月": "2020-01"}
        elif kind == "employee":
            id_number, name = _person(rng, seen)
            cells = {"统一社会信用代码": units[i % len(units)], "身份证号": id_number,
                     "姓名": name, "险种类型": "310", "参保开始年月": "2021-03",
                     "缴费基数": "6500.00", "手机号": f"138{i:08d}"}
        elif kind == "flexible":
            id_number, name = _person(rng, seen)
            cells = {"身份证号": id_number, "姓名": name, "核定方式": "01",
                     "开始年月": "2023-01", "结束年月": f"{this_year}-12", "险种类型": "310",
                     "离退休标志": "0"}
        elif kind == "resident":
            id_number, name = _person(rng, seen)
            cells = {"身份证号": id_number, "姓名": name,
                     "基层医保区划": sorted(KNOWN_COMMUNITIES)[i % len(KNOWN_COMMUNITIES)],
                     "参保身份": "13", "参保年度": str(this_year), "手机号": f"139{i:08d}"}
        else:
            unit, id_number, name = people[i]
            cells = {"统一社会信用代码": unit, "身份证号": id_number, "姓名": name,
                     "中断日期": today_beijing().isoformat(), "中断原因": "05",
                     "备注": "解除劳动关系"}
        out.rows.append(cells)
    if bad:
        key = "统一社会信用代码" if kind == "unit" else "身份证号"
        for n in range(bad):
            index = n * len(out.rows) // bad
            out.rows[index][key] = _spoil(out.rows[index][key])
            out.bad_rows.append(index + 2)
    header = list(COLUMNS[kind])
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows([r[c] for c in header] for r in out.rows)
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tools.initial_load_cli",
                                description="统模式 存量数据批量同步 / 职工批量暂停 to tax")
    p.add_argument("kind", choices=KINDS, help="which records the file holds")
    p.add_argument("file", type=Path, help="the XLSX or CSV file")
    p.add_argument("--tax-url", required=True, help="tax SOAP endpoint, e.g. http://host/tax/ws")
    p.add_argument("--out", type=Path, required=True,
                   help="directory for the reports and the manifest (keep it to resume)")
    p.add_argument("--chunk", type=_chunk, default=DEFAULT_CHUNK_ROWS,
                   help=f"rows per chunk (default {DEFAULT_CHUNK_ROWS})")
    p.add_argument("--concurrency", type=int, default=4, help="chunks in flight (default 4)")
    p.add_argument("--attempts", type=int, default=4, help="tries per chunk (default 4)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per call (default 60)")
    p.add_argument("--restart", action="store_true",
                   help="ignore the manifest of an earlier run (tax still replays)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> LoadSummary:
    """The job behind the command line (tests call it directly)."""
    kind = cast(LoadKind, args.kind)
    bar = tqdm(total=0, unit="row", desc=f"tax {kind}", disable=args.no_progress,
               file=sys.stderr)

    def progress(p: LoadProgress) -> None:
        bar.total = p.rows_total
        bar.n = p.rows_sent
        bar.set_postfix(ok=p.rows_ok, failed=p.rows_failed,
                        chunks=f"{p.chunks_done}/{p.chunks_total}", refresh=False)
        bar.refresh()

    try:
        async with InitialLoadClient(args.tax_url, timeout=args.timeout) as client:
            return await run_initial_load(kind, args.file, client, args.out,
                                          chunk_size=args.chunk,
                                          concurrency=max(1, args.concurrency),
                                          retry=ChunkRetry(attempts=max(1, args.attempts)),
                                          progress=progress, resume=not args.restart)
    finally:
        bar.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return report(args.file, run(args))


if __name__ == "__main__":
    raise SystemExit(main())
