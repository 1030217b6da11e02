"""GB 11643 ID numbers and GB 32100 credit codes: checksums, derived facts, generators."""

from __future__ import annotations

import random
from datetime import date

import pytest

from contracts.ids import (
    NANJING_DIVISIONS,
    birth_date_of,
    credit_code_check,
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
