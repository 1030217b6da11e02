"""F13 fixtures: the files on disk are what the generator writes now, and every one replays
to its expectation (``main.py replay contracts/fixtures --partner voucher``)."""

from __future__ import annotations

import json

from tools.fixtures.generate_partners import replay_partner_fixture
from tools.fixtures.generate_voucher import ROOT, VOUCHER_FOLDERS, build, main


def test_the_voucher_fixtures_are_current_and_replay() -> None:
    assert main(["--check"]) == 0
    files = build()
    assert len(files) == 2 * sum(len(cases()) for _, cases in VOUCHER_FOLDERS.values())
    for path in files:
        if path.name.endswith(".input.json"):
            folder = str(path.parent.relative_to(ROOT))
            expected = json.loads(path.with_name(path.name.replace(
                ".input.json", ".expected.json")).read_text("utf-8"))
            assert replay_partner_fixture(folder, path) == expected, path.name
