"""``main.py replay`` finds every fixture kind, fails what it cannot replay (never skips
it), selects by partner or type, and names each differing JSON field by its path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tools.replay import HELP, discover, json_differences, replay, run_replay, select

FIXTURES = Path(__file__).resolve().parents[3] / "contracts" / "fixtures"


def test_json_differences_name_each_field_by_its_path() -> None:
    want = {"a": 1, "b": {"c": [1, 2, {"d": "x"}]}, "gone": True}
    got = {"a": 1, "b": {"c": [1, 3, {"d": "y"}]}, "new": 0}
    assert json_differences(want, got) == [
        "  b/c[1]: expected 2, got 3", "  b/c[2]/d: expected 'x', got 'y'",
        "  gone: missing (expected True)", "  new: unexpected (got 0)"]
    assert json_differences({"x": [1, 2]}, {"x": [1]}) == [
        "  x: 2 items expected, got 1"]
    assert json_differences({"n": 1}, {"n": 1.0}) == ["  n: expected 1, got 1.0"]
    assert json_differences({"a": 1, "b": 2}, {"b": 2, "a": 1}) == []  # member order


def test_every_committed_folder_has_a_replayer_and_every_kind_is_found() -> None:
    fixtures, unknown = discover(FIXTURES)
    assert unknown == [] and not [fx for fx in fixtures if fx.kind == "unreplayable"]
    kinds = {fx.kind for fx in fixtures}
    assert kinds == {"core", "core_invalid", "tax", "channel_rule", "catalogue", "resend_gap",
                     "rule", "department", "channel_sample", "partner"}
    partners = {fx.partner for fx in fixtures}
    assert {"returnfiles", "reconcile", "student_batch", "transfer", "finance", "drugs",
            "prescription", "channels"} <= partners
    assert len(select(fixtures, "channels", "samples")) == 18
    assert len(select(fixtures, type="catalogue")) == len(list(
        (FIXTURES / "catalogue").glob("*.json")))


async def test_an_unknown_folder_and_a_lone_expectation_fail(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "fixtures"
    shutil.copytree(FIXTURES / "transfer", root / "transfer")
    (root / "newpartner" / "things").mkdir(parents=True)
    (root / "newpartner" / "things" / "001.input.json").write_text("{}")
    lone = root / "transfer" / "applications" / "009_lost.expected.json"
    lone.write_text("{}")
    assert await replay(root) == 1
    out = capsys.readouterr().out
    assert "FAIL newpartner/things/things" in out and "no replayer" in out
    assert "FAIL transfer/applications/009_lost.expected.json" in out
    assert "replay: fixtures=5 passed=3 failed=2" in out


async def test_a_planted_mismatch_fails_with_its_field_path(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "fixtures"
    shutil.copytree(FIXTURES / "finance", root / "finance")
    shutil.copytree(FIXTURES / "drugs", root / "drugs")
    expected = root / "finance" / "refund_events" / "001_approved_order.expected.json"
    doc = json.loads(expected.read_text(encoding="utf-8"))
    doc["data"]["items"][2]["amount"] = "100.00"
    expected.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    assert await replay(root, partner="finance") == 1
    out = capsys.readouterr().out
    assert "FAIL finance/refund_events/001_approved_order" in out
    assert "  data/items[2]/amount: expected '100.00', got '100.01'" in out
    assert "drugs/" not in out  # --partner kept one partner's fixtures
    assert "replay: fixtures=3 passed=2 failed=1" in out


def test_the_sync_entry_selects_a_type_and_says_when_nothing_matched(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert run_replay(FIXTURES / "channels", type="samples") == 0
    out = capsys.readouterr().out
    assert out.count("PASS channels/samples/") == 18
    assert out.rstrip().endswith("replay: fixtures=18 passed=18 failed=0")
    assert run_replay(FIXTURES, partner="nobody") == 2
    assert "partners: channels, core" in capsys.readouterr().out
    assert run_replay(FIXTURES / "nowhere") == 2
    assert "--partner" in HELP and "--type" in HELP and "never skipped" in HELP
