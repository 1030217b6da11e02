"""F14 fixtures: the files on disk are what the generator writes now, every one replays to
its expectation (``main.py replay contracts/fixtures --partner institution_recon``), and
``generate_partners`` (which ``tools.replay`` dispatches by) carries the F14 folders."""

from __future__ import annotations

import json

from tools.fixtures.generate_institution_recon import (
    INSTITUTION_RECON_FOLDERS,
    ROOT,
    build,
    main,
)
from tools.fixtures.generate_partners import FOLDERS, replay_partner_fixture
from tools.replay import KINDS


def test_the_institution_recon_fixtures_are_current_and_replay() -> None:
    assert main(["--check"]) == 0
    files = build()
    assert len(files) == 2 * sum(len(cases()) for _, cases in
                                 INSTITUTION_RECON_FOLDERS.values())
    assert set(INSTITUTION_RECON_FOLDERS) <= set(FOLDERS)
    for folder in INSTITUTION_RECON_FOLDERS:
        assert KINDS[tuple(folder.split("/"))] == "partner"  # type: ignore[index]
    for path in files:
        if path.name.endswith(".input.json"):
            folder = str(path.parent.relative_to(ROOT))
            expected = json.loads(path.with_name(path.name.replace(
                ".input.json", ".expected.json")).read_text("utf-8"))
            assert replay_partner_fixture(folder, path) == expected, path.name
