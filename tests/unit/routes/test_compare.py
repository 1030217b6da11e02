"""F3 比对's core side: spooled page by page to a file, and the smaller side indexed while
the other streams, with the same differences whichever side that is."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from contracts.reconcile import BatchHeader
from routes.compare import _run, spool_core
from simulators.core import CoreStore
from tests.support.fakes import FakeCore


def _employees(n: int, seed: int) -> list[dict[str, Any]]:
    return CoreStore.seed(2, n, rng_seed=seed).snapshot("employee")


def _tax_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8-sig") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _core_file(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return path


async def test_core_is_spooled_page_by_page_one_record_a_line(tmp_path: Path) -> None:
    core = FakeCore()
    core.snapshots["employee"] = _employees(5, seed=1)
    path = tmp_path / "spool" / "b.core.jsonl"
    assert await spool_core(core, "employee", path) == 5  # pages of 2, 2 and 1
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == core.snapshots["employee"]


@pytest.mark.parametrize(("n_tax", "n_core", "indexed"), [(3, 10, "tax"), (10, 3, "core")])
def test_the_smaller_side_is_indexed_and_the_differences_are_the_same(
        tmp_path: Path, n_tax: int, n_core: int, indexed: str) -> None:
    people = _employees(13, seed=7)
    shared = people[:3]  # on both sides; one of them with another 缴费基数 at tax
    tax = [dict(r) for r in shared] + people[3:3 + n_tax - 3]
    tax[0]["pay_base"] = int(str(tax[0]["pay_base"])) + 100
    core = shared + people[3 + n_tax - 3:3 + n_tax - 3 + n_core - 3]
    header = BatchHeader(batch_id="B1", kind="employee", as_of="2026-12-01",
                         record_count=len(tax))
    summary = _run(header, _tax_csv(tmp_path / "t.csv", tax), _core_file(
        tmp_path / "c.jsonl", core), len(core), tmp_path / "out" / "B1")
    assert summary["indexed"] == indexed
    assert (summary["tax_records"], summary["core_records"]) == (n_tax, n_core)
    assert (summary["identical"], summary["field_mismatch"]) == (2, 1)
    assert (summary["only_at_tax"], summary["only_in_core"]) == (n_tax - 3, n_core - 3)
    kinds = [row[2] for row in csv.reader(
        (tmp_path / "out" / "B1.csv").open(encoding="utf-8-sig"))][1:]  # past the header
    assert kinds.count("字段不一致") == 1
    assert kinds.count("税务有、核心无") == n_tax - 3
    assert kinds.count("核心有、税务无") == n_core - 3
