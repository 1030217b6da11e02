"""The 集中征缴期 setting (resident_collection): default, file, environment, bad values."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from config.settings import ConfigError, load_settings

NO_FILE = "/nonexistent/hub.toml"


def test_default_is_september_to_december_before_the_insurance_year() -> None:
    periods = load_settings(env={}, settings_file=NO_FILE).resident_collection
    assert periods.window(2027) == (date(2026, 9, 1), date(2026, 12, 31))


def test_a_years_notice_comes_from_the_settings_file(tmp_path: Path) -> None:
    file = tmp_path / "hub.toml"
    file.write_text('[resident_collection]\ndefault_start = "10-01"\n'
                    '[resident_collection.years]\n"2027" = [2026-09-15, 2027-02-28]\n',
                    encoding="utf-8")
    periods = load_settings(env={}, settings_file=str(file)).resident_collection
    assert periods.window(2027) == (date(2026, 9, 15), date(2027, 2, 28))
    assert periods.window(2028) == (date(2027, 10, 1), date(2027, 12, 31))


def test_the_environment_sets_it_too() -> None:
    s = load_settings(env={"HUB_RESIDENT_COLLECTION__DEFAULT_END": "11-30"},
                      settings_file=NO_FILE)
    assert s.resident_collection.window(2027)[1] == date(2026, 11, 30)


def test_a_bad_period_stops_the_start_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"setting resident_collection\.default_start"):
        load_settings(env={"HUB_RESIDENT_COLLECTION__DEFAULT_START": "02-29"},
                      settings_file=NO_FILE)
