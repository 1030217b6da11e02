"""Issue 10's pure-rule fixtures (items 6, 8, 12): current, replayed, and a tampered one fails."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tools.fixtures.generate_rules import CASES, FOLDERS, main, replay_rule_fixture


def test_fixtures_are_current() -> None:
    assert main(["--check"]) == 0
    for kind, folder in FOLDERS.items():
        assert len(list(folder.glob("*.json"))) == 2 * len(CASES[kind])


def test_every_fixture_replays_clean_and_each_kind_has_a_refusal_or_a_no() -> None:
    for kind, cases in CASES.items():
        outs = []
        for name in cases:
            folder = FOLDERS[kind]
            assert replay_rule_fixture(kind, folder / f"{name}.input.json",
                                       folder / f"{name}.expected.json") == []
            outs.append((folder / f"{name}.expected.json").read_text(encoding="utf-8"))
        assert len(set(outs)) > 1, kind  # both branches of each rule are covered


def test_a_tampered_expectation_fails(tmp_path: Path) -> None:
    name = next(iter(CASES["identity_confirmation"]))
    src = FOLDERS["identity_confirmation"]
    for suffix in ("input", "expected"):
        shutil.copy(src / f"{name}.{suffix}.json", tmp_path / f"{name}.{suffix}.json")
    expected = tmp_path / f"{name}.expected.json"
    expected.write_text(json.dumps({"decision": "ignore"}), encoding="utf-8")
    diff = replay_rule_fixture("identity_confirmation", tmp_path / f"{name}.input.json",
                               expected)
    assert any('"decision": "redrive"' in line for line in diff), diff
