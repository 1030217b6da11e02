"""``main.py replay``: the committed fixtures pass through a real hub; a tampered one fails."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from config.settings import load_settings
from tools.replay import replay

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[3] / "contracts" / "fixtures"


@pytest.mark.parametrize("folder", ["core/employee_enroll", "core/employee_enroll_invalid",
                                    "tax/employee_enroll"])
async def test_committed_fixtures_pass(folder: str, capsys: pytest.CaptureFixture[str]) -> None:
    n = len(list((FIXTURES / folder).glob("*.input.json")))
    assert await replay(FIXTURES / folder, settings=load_settings()) == 0
    out = capsys.readouterr().out
    assert out.count("PASS ") == n and "FAIL" not in out
    assert f"replay: fixtures={n} passed={n} failed=0" in out


def _copy(folder: str, dest: Path) -> Path:
    target = dest / folder
    shutil.copytree(FIXTURES / folder, target)
    return target


async def test_tampered_core_expectation_fails(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    folder = _copy("core/employee_enroll", tmp_path)
    expected = folder / "001_basic_male.expected.json"
    record = json.loads(expected.read_text(encoding="utf-8"))
    record["phone"] = "13900000000"
    expected.write_text(json.dumps(record, ensure_ascii=False, indent=2), encoding="utf-8")
    assert await replay(folder, settings=load_settings()) == 1
    out = capsys.readouterr().out
    assert "FAIL core/employee_enroll/001_basic_male" in out
    assert "  tax_received/phone: expected '13900000000', got '13381823792'" in out
    assert "PASS core/employee_enroll/002_numeric_codes_lowercase_x" in out
    assert "replay: fixtures=3 passed=2 failed=1" in out


async def test_tampered_tax_golden_fails(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    folder = _copy("tax/employee_enroll", tmp_path)
    golden = folder / "003_female.expected.xml"
    golden.write_text(golden.read_text(encoding="utf-8").replace("<tax:xb>2</tax:xb>",
                                                                 "<tax:xb>1</tax:xb>"),
                      encoding="utf-8")
    assert await replay(tmp_path, settings=load_settings()) == 1
    out = capsys.readouterr().out
    assert "FAIL tax/employee_enroll/003_female" in out
    assert "replay: fixtures=4 passed=3 failed=1" in out


async def test_catalogue_fixtures_replay_and_a_tampered_one_fails(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every catalogue operation (issue 10's new queries included) is replayed; a golden SOAP
    request whose 核验时间 differs from what the hub builds fails, naming the element."""
    n = len(list((FIXTURES / "catalogue").glob("*.json")))
    assert await replay(FIXTURES / "catalogue", settings=load_settings()) == 0
    out = capsys.readouterr().out
    assert f"replay: fixtures={n} passed={n} failed=0" in out
    for name in ("RefundReviewFeedback", "QueryFlexibleDeduction", "CoreQuerySpecialArrivals"):
        assert f"PASS catalogue/{name}" in out
    folder = tmp_path / "fixtures" / "catalogue"
    shutil.copytree(FIXTURES / "catalogue", folder)
    golden = folder / "RefundReviewFeedback.xml"
    golden.write_text(golden.read_text(encoding="utf-8").replace(
        "2026-11-24T09:15:00+08:00", "2026-11-24T01:15:00Z"), encoding="utf-8")
    assert await replay(folder, settings=load_settings()) == 1
    out = capsys.readouterr().out
    assert "FAIL catalogue/RefundReviewFeedback" in out and "tax:hysj" in out
    assert f"replay: fixtures={n} passed={n - 1} failed=1" in out
