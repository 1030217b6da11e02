"""Command line for 大学生批量参保 / 大学生批量暂停: a university file -> tax, progress bar.

    python -m tools.student_batch_cli enroll students.xlsx --tax-url http://tax/tax/ws --out out/
    python -m tools.student_batch_cli stop graduates.csv --tax-url ... --out out/ --chunk 500

Writes ``{stem}.invalid``, ``.success``, ``.failure`` and ``.difficulty`` (CSV
and XLSX) into ``--out`` and prints the summary. Exit codes: 0 the file was
processed (rows may still have failed: see the files), 2 the file could not be
read at all (nothing was sent), 3 some chunks never reached tax after their
retries (run the same file again: the same batch id makes tax replay, not repeat).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, Final, Protocol, cast

from tqdm import tqdm

from adapters.tax.student_batch import StudentBatchClient
from contracts.errors import ValidationFailed
from contracts.student_batch import MAX_CHUNK_ROWS, BatchOp
from jobs.student_batch import BatchSummary, ChunkRetry, run_batch

__all__ = ["EXIT_CHUNKS_FAILED", "EXIT_OK", "EXIT_UNREADABLE", "main", "parse_args", "report",
           "run"]

EXIT_OK: Final = 0
EXIT_UNREADABLE: Final = 2
EXIT_CHUNKS_FAILED: Final = 3


def _chunk(value: str) -> int:
    n = int(value)
    if not 1 <= n <= MAX_CHUNK_ROWS:
        raise argparse.ArgumentTypeError(f"must be 1..{MAX_CHUNK_ROWS}")
    return n


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tools.student_batch_cli",
                                description="大学生批量参保 / 大学生批量暂停 to the tax bureau")
    p.add_argument("op", choices=("enroll", "stop"), help="enroll = 批量参保, stop = 批量暂停")
    p.add_argument("file", type=Path, help="the university's XLSX or CSV file")
    p.add_argument("--tax-url", required=True, help="tax SOAP endpoint, e.g. http://host/tax/ws")
    p.add_argument("--out", type=Path, required=True, help="directory for the result files")
    p.add_argument("--chunk", type=_chunk, default=500, help="rows per chunk (default 500)")
    p.add_argument("--concurrency", type=int, default=4, help="chunks in flight (default 4)")
    p.add_argument("--attempts", type=int, default=4, help="tries per chunk (default 4)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per call (default 60)")
    p.add_argument("--batch-id", default=None,
                   help="批次号 (default: derived from the file, so a rerun is replayed)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> BatchSummary:
    """The job behind the command line (tests call it directly)."""
    op = cast(BatchOp, args.op)
    bar = tqdm(total=0, unit="row", desc=f"tax {op}", disable=args.no_progress,
               file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        async with StudentBatchClient(args.tax_url, timeout=args.timeout) as client:
            return await run_batch(op, args.file, client, args.out, chunk_size=args.chunk,
                                   concurrency=max(1, args.concurrency),
                                   batch_id=args.batch_id,
                                   retry=ChunkRetry(attempts=max(1, args.attempts)),
                                   progress=progress)
    finally:
        bar.close()


class Summary(Protocol):
    chunks_failed: int

    def lines(self) -> list[str]: ...


def report(file: Path, job: Coroutine[Any, Any, Summary]) -> int:
    """Run a file job to its end and print its summary; the exit code (``EXIT_*``). Shared
    with ``tools.initial_load_cli``."""
    try:
        summary = asyncio.run(job)
    except ValidationFailed as exc:
        for column, reason in exc.errors:
            print(f"{file}: {column}: {reason}", file=sys.stderr)
        return EXIT_UNREADABLE
    print("\n".join(summary.lines()))
    return EXIT_CHUNKS_FAILED if summary.chunks_failed else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return report(args.file, run(args))


if __name__ == "__main__":
    raise SystemExit(main())
