"""Bench: parse tax return files (回盘文件) of 100k, 1M and 5M lines, one core, constant memory.

Each file is generated streaming into a temporary directory, then parsed by
the hub's reader (``contracts.returnfile``) in a fresh subprocess per size, so
every peak RSS (``ru_maxrss``) is that size's own and not the largest one so
far. The child only counts records and line errors: this measures the parser
and the file read, not the database. ``employee_pay`` is the default kind: the
biggest files and the most checks per line (credit code, ID number, date).

    .venv/bin/python -m bench.returnfile [--sizes 100000,1000000,5000000] [--kind employee_pay]

The last line is machine-readable, for the 1M file:
``returnfile: lines_per_s=N peak_mb=M lines=L``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # allow `python bench/returnfile.py` as well as `-m bench.returnfile`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contracts.returnfile import (
    KINDS,
    ReturnFileReader,
    ReturnRecord,
    iter_lines,
    write_return_file,
)

__all__ = ["generate", "main", "parse_file"]

_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SIZES = (100_000, 1_000_000, 5_000_000)
REPORT_SIZE = 1_000_000


def _pin_one_cpu() -> None:
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def _maxrss_mb() -> float:
    """Peak resident set of this process so far (Linux reports KiB, macOS bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def generate(path: Path, kind: str, lines: int) -> float:
    """Write a file of ``lines`` detail lines; returns the seconds it took."""
    start = time.perf_counter()
    with path.open("wb", buffering=1 << 20) as out:
        write_return_file(out, kind, lines)
    return time.perf_counter() - start


def parse_file(path: Path) -> dict[str, Any]:
    """Parse like the hub does (streaming, every check), counting instead of storing."""
    base_mb = _maxrss_mb()
    records = errors = 0
    start = time.perf_counter()
    with path.open("rb", buffering=1 << 20) as fp:
        reader = ReturnFileReader(iter_lines(fp))
        for item in reader:
            if type(item) is ReturnRecord:
                records += 1
            else:
                errors += 1
    seconds = time.perf_counter() - start
    s = reader.summary
    return {"lines": s.lines, "records": records, "errors": errors, "seconds": seconds,
            "base_mb": round(base_mb, 1), "peak_mb": round(_maxrss_mb(), 1),
            "bytes": path.stat().st_size}


def _child(path: Path) -> dict[str, Any]:
    """Run ``parse_file`` in a fresh interpreter so its peak memory is its own."""
    out = subprocess.run([sys.executable, "-m", "bench.returnfile", "--child", str(path)],
                         cwd=_ROOT, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)))
    parser.add_argument("--kind", default="employee_pay", choices=sorted(KINDS))
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    _pin_one_cpu()
    if args.child:
        print(json.dumps(parse_file(args.child)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s]
    results: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-returnfile-") as tmp:
        for n in sizes:
            path = Path(tmp) / f"{args.kind}_20250115_{n}.txt"
            gen_s = generate(path, args.kind, n)
            r = results[n] = _child(path)
            path.unlink()
            assert r["records"] == n and r["errors"] == 0, r
            print(json.dumps({"bench": "returnfile", "kind": args.kind, "lines": n,
                              "mb": round(r["bytes"] / 1e6, 1), "generate_s": round(gen_s, 1),
                              "parse_s": round(r["seconds"], 2),
                              "lines_per_s": round(n / r["seconds"]),
                              "base_mb": r["base_mb"], "peak_mb": r["peak_mb"]}))
    n = REPORT_SIZE if REPORT_SIZE in results else sizes[-1]
    r = results[n]
    print(f"returnfile: lines_per_s={round(n / r['seconds'])} peak_mb={round(r['peak_mb'])} "
          f"lines={n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
