"""灵活补发 detection fixtures: current with the rule, and a tampered one fails its replay."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tools.fixtures.generate_resend import CASES, ROOT, build, main, replay_gap


def test_fixtures_are_current_and_every_case_has_a_pair() -> None:
    assert main(["--check"]) == 0
    assert len(build()) == 2 * len(CASES) == len(list(ROOT.glob("*.json")))


def test_every_fixture_replays_clean() -> None:
    for name, *_ in CASES:
        assert replay_gap(ROOT / f"{name}.input.json", ROOT / f"{name}.expected.json") == []


def test_a_tampered_expectation_fails_naming_the_difference(tmp_path: Path) -> None:
    name = CASES[1][0]
    for suffix in ("input", "expected"):
        shutil.copy(ROOT / f"{name}.{suffix}.json", tmp_path / f"{name}.{suffix}.json")
    expected = tmp_path / f"{name}.expected.json"
    body = json.loads(expected.read_text(encoding="utf-8"))
    body["gap"]["action"] = "terminate"
    expected.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    diff = replay_gap(tmp_path / f"{name}.input.json", expected)
    assert any('"action": "stop"' in line for line in diff), diff
