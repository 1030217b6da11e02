"""Issue 11's department fixtures (F7 lists, files and status files; F8 warning lists; F12
deadlines and cases): current, replayed clean by ``main.py replay`` with the pure contract
functions (no server), and a fixture with a wrong expectation fails."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from contracts.difficulty_files import TITLE_ROWS
from contracts.ids import validate_id_number
from services.difficulty import MAX_TITLE_ROWS
from tools.fixtures.generate_departments import (
    CASES,
    FOLDERS,
    main,
    replay_department_fixture,
)
from tools.replay import replay


def test_fixtures_are_current_and_every_kind_is_there() -> None:
    assert main(["--check"]) == 0
    for kind, folder in FOLDERS.items():
        assert len(list(folder.glob("*.json"))) == 2 * len(CASES[kind]), kind


def test_each_kind_covers_both_outcomes_and_identities_are_valid_synthetic_ones() -> None:
    for kind, cases in CASES.items():
        outs = {(FOLDERS[kind] / f"{n}.expected.json").read_text(encoding="utf-8")
                for n in cases}
        assert len(outs) == len(cases), kind  # no two cases decide the same
    refused = [json.loads((FOLDERS["lists"] / f"{n}.expected.json").read_text())
               for n in CASES["lists"]]
    fields = {r["field"] for out in refused for r in out["refused"]}
    assert {"identity", "id_number", "end_date", "department", "month", "records"} <= fields
    kept = [k for out in refused for k in out.get("kept", [])]
    assert kept and all(validate_id_number(k["id_number"]) is None for k in kept)
    files = {n: json.loads((FOLDERS["files"] / f"{n}.expected.json").read_text())
             for n in CASES["files"]}
    assert files["01_a_gbk_file_is_detected_and_read"]["status_file_encoding"] == "gbk"
    assert not files["07_an_oversize_file_is_refused_whole"]["accepted"]
    assert not files["04_a_file_without_a_required_column_is_refused_whole"]["accepted"]


def test_the_title_rows_of_the_status_file_are_the_imports() -> None:
    assert TITLE_ROWS == MAX_TITLE_ROWS


@pytest.mark.parametrize("folder", ["difficulty", "warnings", "union"])
async def test_main_replay_passes_the_committed_fixtures(
        folder: str, capsys: pytest.CaptureFixture[str]) -> None:
    root = FOLDERS["lists"].parents[1] / folder
    n = len(list(root.rglob("*.input.json")))
    assert await replay(root) == 0  # pure contracts: no hub needed
    out = capsys.readouterr().out
    assert f"replay: fixtures={n} passed={n} failed=0" in out and "FAIL" not in out


@pytest.mark.parametrize(("kind", "name", "edit", "shows"), [
    ("lists", "04_a_bad_id_checksum_is_refused",
     lambda e: e["refused"][0].update(field="name"), '"field": "id_number"'),
    ("warnings", "01_poverty_is_strictly_above_the_income_line_urban_and_rural",
     lambda e: e["departments"]["civil_affairs"].pop(), '"line": "'),
    ("deadlines", "01_acceptance_across_national_day_2025",
     lambda e: e.update(due="2025-10-02"), '"due": "2025-10-10"'),
    ("cases", "02_a_colour_jpg_at_200_dpi_is_refused",
     lambda e: e.update(valid=True), '"valid": false'),
    ("status_files", "01_gbk_in_gbk_out_every_row_settled",
     lambda e: e["counts"].update(synced=3), '"synced": 2'),
])
async def test_a_wrong_expectation_fails(tmp_path: Path, kind: str, name: str, edit: object,
                                         shows: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    src = FOLDERS[kind]
    folder = tmp_path / src.parent.name / src.name
    folder.mkdir(parents=True)
    for suffix in ("input", "expected"):
        shutil.copy(src / f"{name}.{suffix}.json", folder / f"{name}.{suffix}.json")
    expected = folder / f"{name}.expected.json"
    data = json.loads(expected.read_text(encoding="utf-8"))
    edit(data)  # type: ignore[operator]
    expected.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    diff = replay_department_fixture(folder / f"{name}.input.json", expected)
    assert any(line.startswith("+") and shows in line for line in diff), diff
    assert await replay(tmp_path) == 1
    out = capsys.readouterr().out
    assert f"FAIL {src.parent.name}/{src.name}/{name}" in out
    assert "replay: fixtures=1 passed=0 failed=1" in out
