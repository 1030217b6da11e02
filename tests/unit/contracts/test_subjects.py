"""Subject hashes: which identifiers a business key names, normalised, keyed per kind."""

from __future__ import annotations

import random

import pytest

from contracts.ids import make_credit_code, make_id_number
from contracts.subjects import find_subjects, subject_hash, subject_hashes, valid_subject

RNG = random.Random(15)
ID = make_id_number(RNG)
USCC = make_credit_code(RNG)
X_ID = next(i for i in (make_id_number(RNG) for _ in range(500)) if i.endswith("X"))


def _bad_check(value: str) -> str:
    return value[:17] + ("0" if value[17] != "0" else "1")


def test_a_business_key_names_its_unit_and_person() -> None:
    assert find_subjects(f"{USCC}:{ID}") == [("unit", USCC), ("person", ID)]
    assert find_subjects(f"psn:{ID}") == [("person", ID)]


def test_a_lower_case_x_is_the_same_person() -> None:
    assert find_subjects(f"psn:{X_ID.lower()}") == [("person", X_ID)]
    key = b"k" * 32
    assert subject_hash(key, "person", X_ID.lower()) == subject_hash(key, "person", X_ID)


def test_tokens_with_a_wrong_check_character_or_inside_longer_text_are_not_subjects() -> None:
    assert find_subjects(_bad_check(ID), f"{_bad_check(USCC)}:x") == []
    assert find_subjects(f"A{ID}", f"{ID}9") == []
    assert find_subjects("my_nanjing:REQ-0001", "-", "") == []


def test_each_subject_is_listed_once_whatever_repeats_it() -> None:
    assert find_subjects(f"{ID}:{ID}", f"psn:{ID}") == [("person", ID)]


def test_the_hash_is_keyed_and_separates_kinds() -> None:
    a, b = b"a" * 32, b"b" * 32
    assert subject_hash(a, "person", ID) != subject_hash(b, "person", ID)
    assert subject_hash(a, "person", ID) != subject_hash(a, "unit", ID)
    assert len(subject_hash(a, "unit", USCC)) == 64
    assert subject_hashes(a, f"{USCC}:{ID}") == [("unit", subject_hash(a, "unit", USCC)),
                                                  ("person", subject_hash(a, "person", ID))]


def test_a_search_validates_the_whole_rule_without_quoting_the_value() -> None:
    assert valid_subject("person", f" {X_ID.lower()} ") == X_ID
    assert valid_subject("unit", USCC.lower()) == USCC
    with pytest.raises(ValueError, match="check character") as exc:
        valid_subject("person", _bad_check(ID))
    assert _bad_check(ID) not in str(exc.value)
    with pytest.raises(ValueError, match="check character"):
        valid_subject("unit", _bad_check(USCC))
    with pytest.raises(ValueError, match="18 characters"):
        valid_subject("person", ID[:-1])
