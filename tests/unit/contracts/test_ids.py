"""GB 11643 ID numbers and GB 32100 credit codes: checksums, derived facts, generators."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

import contracts.ids
from contracts.clock import today_beijing
from contracts.ids import (
    NANJING_DIVISIONS,
    birth_date_of,
    credit_code_check,
    division_name,
    gender_of,
    id_check_char,
    is_valid_credit_code,
    make_credit_code,
    make_id_number,
    validate_id_number,
)

# The examples printed in GB 11643-1999 itself, and well-known published credit codes.
STANDARD_IDS = ["11010519491231002X", "440524188001010014"]
PUBLISHED_USCCS = ["91350100M000100Y43", "9144030071526726XG", "91440300708461136T"]


@pytest.mark.parametrize("value", STANDARD_IDS)
def test_standard_examples_are_valid(value: str) -> None:
    assert validate_id_number(value) is None


def test_check_char_of_the_standard_examples() -> None:
    assert id_check_char("11010519491231002") == "X"
    assert id_check_char("44052418800101001") == "4"


@pytest.mark.parametrize(("value", "reason"), [
    ("11010519491231002", "must be 18 characters, got 17"),
    ("11010519491231002XX", "must be 18 characters, got 19"),
    ("", "must be 18 characters, got 0"),
    ("1101051949123100AX", "must be 17 digits followed by a digit or X"),
    ("11010519491231002x", "must be 17 digits followed by a digit or X"),  # lower-case x
    ("110105194902300021", "birth date 19490230 is not a real date"),
    ("110105194912310021", "check character should be X, got 1"),
])
def test_invalid_ids_say_why(value: str, reason: str) -> None:
    assert validate_id_number(value) == reason


def test_every_wrong_check_char_is_caught() -> None:
    good = STANDARD_IDS[1]
    for c in "0123456789X":
        if c != good[-1]:
            assert validate_id_number(good[:17] + c) is not None


def test_birth_date_and_gender() -> None:
    assert birth_date_of("11010519491231002X") == date(1949, 12, 31)
    assert gender_of("11010519491231002X") == "2"  # sequence 002: even -> female
    assert birth_date_of("440524188001010014") == date(1880, 1, 1)
    assert gender_of("440524188001010014") == "1"  # sequence 001: odd -> male


def test_birth_date_of_an_impossible_date_raises() -> None:
    with pytest.raises(ValueError):
        birth_date_of("110105194902300021")


@pytest.mark.parametrize("value", PUBLISHED_USCCS)
def test_published_credit_codes_are_valid(value: str) -> None:
    assert is_valid_credit_code(value) is None
    assert credit_code_check(value[:17]) == value[17]


@pytest.mark.parametrize(("value", "reason"), [
    ("91350100M000100Y4", "must be 18 characters, got 17"),
    ("91350100M000100Y4I", "character 'I' is not allowed"),
    ("91350100O000100Y43", "character 'O' is not allowed"),
    ("91350100m000100Y43", "character 'm' is not allowed"),
    ("91350100M000100Y44", "check character should be 3, got 4"),
])
def test_invalid_credit_codes_say_why(value: str, reason: str) -> None:
    assert is_valid_credit_code(value) == reason


def test_generated_ids_are_always_valid_nanjing_ids() -> None:
    for seed in range(500):
        rng = random.Random(seed)
        value = make_id_number(rng)
        assert validate_id_number(value) is None, (seed, value)
        assert value[:6] in NANJING_DIVISIONS and value[:6] != "320100"
        assert 1960 <= birth_date_of(value).year <= 2004


def test_generated_ids_honour_gender_birth_date_and_area() -> None:
    born = date(1990, 2, 28)
    for seed in range(500):
        rng = random.Random(seed)
        male = seed % 2 == 0
        value = make_id_number(rng, born=born, male=male, area="320115")
        assert validate_id_number(value) is None, (seed, value)
        assert gender_of(value) == ("1" if male else "2")
        assert birth_date_of(value) == born
        assert value.startswith("320115")


def test_generators_are_deterministic_per_seed() -> None:
    assert make_id_number(random.Random(3)) == make_id_number(random.Random(3))
    assert make_credit_code(random.Random(3)) == make_credit_code(random.Random(3))


def test_generated_credit_codes_are_always_valid() -> None:
    for seed in range(500):
        value = make_credit_code(random.Random(seed))
        assert is_valid_credit_code(value) is None, (seed, value)
        assert value.startswith("91")
        assert value[2:8] in NANJING_DIVISIONS


# -- plausibility: a real division, a birth date not in the future (item 16) -----------


def _with(area: str, born: date, seq: str = "001") -> str:
    first17 = f"{area}{born:%Y%m%d}{seq}"
    return first17 + id_check_char(first17)


def test_an_id_born_after_today_is_refused_with_the_reason() -> None:
    today = date(2026, 11, 30)
    assert validate_id_number(_with("320102", today), today=today) is None
    assert validate_id_number(_with("320102", today + timedelta(days=1)), today=today) == \
        "birth date 20261201 is in the future (today is 20261130, Beijing)"
    assert "in the future" in (validate_id_number(_with("320102", date(2099, 1, 1))) or "")


def test_the_future_is_counted_in_beijing_calendar(monkeypatch: pytest.MonkeyPatch) -> None:
    """At 01:00 in Beijing it is still yesterday in UTC: a baby born today in Beijing
    is valid, one 'born' tomorrow is not, whatever the server's clock zone."""
    monkeypatch.setattr(contracts.ids, "today_beijing", lambda: date(2026, 3, 2))
    assert validate_id_number(_with("320106", date(2026, 3, 2))) is None
    assert "in the future" in (validate_id_number(_with("320106", date(2026, 3, 3))) or "")


def test_an_id_born_today_in_beijing_is_valid() -> None:
    assert validate_id_number(_with("320115", today_beijing())) is None


@pytest.mark.parametrize("area", ["999999", "000000", "320199", "320119", "123456"])
def test_an_area_code_that_is_no_division_is_refused_with_the_reason(area: str) -> None:
    assert validate_id_number(_with(area, date(1990, 1, 1))) == \
        f"area code {area} is not an administrative division (GB/T 2260)"


@pytest.mark.parametrize(("area", "name"), [
    ("440524", "潮阳县"),    # the GB 11643 example: a county until 1993
    ("320103", "白下区"),    # merged into 秦淮区 in 2013
    ("320107", "下关区"),    # merged into 鼓楼区 in 2013
    ("320121", "江宁县"),    # became 江宁区 in 2000
    ("110103", "崇文区"),    # merged into 东城区 in 2010
])
def test_historical_division_codes_stay_valid(area: str, name: str) -> None:
    """An ID keeps the code of the place it was issued: abolished codes are accepted."""
    assert division_name(area) == name
    assert validate_id_number(_with(area, date(1960, 5, 5))) is None


@pytest.mark.parametrize("area", ["320000", "320100", "110101", "653228", "659012",
                                  "810000", "820000", "830000"])
def test_current_divisions_and_residence_permit_codes_are_accepted(area: str) -> None:
    assert validate_id_number(_with(area, date(2000, 2, 29))) is None


def test_every_nanjing_division_is_a_real_division_code() -> None:
    for code, name in NANJING_DIVISIONS.items():
        assert division_name(code) == name, code


def test_the_division_file_covers_every_province_level_division() -> None:
    provinces = {"11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35",
                 "36", "37", "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54",
                 "61", "62", "63", "64", "65", "71", "81", "82"}
    assert all(division_name(p + "0000") for p in provinces)
    assert division_name("320100") == "南京市"


def test_the_checksum_is_named_before_plausibility() -> None:
    """A typo is reported as a typo even when the area or date would fail too."""
    bad = _with("999999", date(2099, 1, 1))
    wrong = next(c for c in "0123456789X" if c != bad[17])
    assert (validate_id_number(bad[:17] + wrong) or "").startswith("check character")


def test_generated_ids_are_never_born_in_the_future() -> None:
    for seed in range(200):
        value = make_id_number(random.Random(seed))
        assert birth_date_of(value) <= today_beijing()
        assert division_name(value[:6]) is not None


def test_the_generator_refuses_an_area_that_is_no_division() -> None:
    with pytest.raises(ValueError, match="999999 is not an administrative division"):
        make_id_number(random.Random(1), area="999999")
