"""Checksums of Chinese identifiers (GB 11643 ID numbers, GB 32100 credit codes).

Pure functions: used by contract validators and by the synthetic-identity
generator that builds fixtures, so fixtures always carry valid checksums.

Beyond the checksum, an ID number must be plausible: its first six digits a real
administrative division (GB/T 2260) and its birth date not after today in Beijing
(``contracts.clock``). The division codes are the data file ``contracts/data/divisions.txt``
(its header says where it comes from): current and historical codes of every level,
since an ID keeps the code of the place it was first issued for life. The synthetic
generators draw from ``NANJING_DIVISIONS``, all of which are in that file.
"""

from __future__ import annotations

import random
from datetime import date
from functools import cache
from importlib.resources import files

from contracts.clock import today_beijing

__all__ = [
    "NANJING_DIVISIONS",
    "People",
    "birth_date_of",
    "credit_code_check",
    "division_name",
    "gender_of",
    "id_check_char",
    "is_valid_credit_code",
    "make_credit_code",
    "make_id_number",
    "validate_id_number",
]

NANJING_DIVISIONS: dict[str, str] = {
    "320100": "南京市", "320102": "玄武区", "320104": "秦淮区", "320105": "建邺区",
    "320106": "鼓楼区", "320111": "浦口区", "320113": "栖霞区", "320114": "雨花台区",
    "320115": "江宁区", "320116": "六合区", "320117": "溧水区", "320118": "高淳区",
}



@cache
def _divisions() -> dict[str, str]:
    """code -> name of every GB/T 2260 division code, read once from the shipped file."""
    text = files("contracts").joinpath("data", "divisions.txt").read_text(encoding="utf-8")
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            code, _, name = line.partition("\t")
            out[code] = name
    return out


def division_name(code: str) -> str | None:
    """The (most recent) name of a GB/T 2260 division code, current or historical; else None."""
    return _divisions().get(code)


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))


def id_check_char(first17: str) -> str:
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def validate_id_number(value: str, *, today: date | None = None) -> str | None:
    """Return None when ``value`` is a valid 18-char ID number, else the reason.

    Checked in this order, the first failure named: length, characters, a real birth
    date, the check character (a typo is reported as such), then plausibility: the
    area code is a GB/T 2260 division and the birth date is not after ``today``
    (default: today in Beijing).
    """
    if len(value) != 18:
        return f"must be 18 characters, got {len(value)}"
    if not value[:17].isdigit() or not (value[17].isdigit() or value[17] == "X"):
        return "must be 17 digits followed by a digit or X"
    try:
        born = birth_date_of(value)
    except ValueError:
        return f"birth date {value[6:14]} is not a real date"
    if id_check_char(value[:17]) != value[17]:
        return f"check character should be {id_check_char(value[:17])}, got {value[17]}"
    if division_name(value[:6]) is None:
        return f"area code {value[:6]} is not an administrative division (GB/T 2260)"
    today = today or today_beijing()
    if born > today:
        return f"birth date {value[6:14]} is in the future (today is {today:%Y%m%d}, Beijing)"
    return None


def birth_date_of(id_number: str) -> date:
    return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


def gender_of(id_number: str) -> str:
    """GB/T 2261.1 code: 1 male (odd sequence), 2 female (even)."""
    return "1" if int(id_number[16]) % 2 else "2"


def credit_code_check(first17: str) -> str:
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def is_valid_credit_code(value: str) -> str | None:
    """Return None when ``value`` is a valid unified social credit code, else the reason."""
    if len(value) != 18:
        return f"must be 18 characters, got {len(value)}"
    bad = [c for c in value if c not in _USCC_ALPHABET]
    if bad:
        return f"character {bad[0]!r} is not allowed"
    if credit_code_check(value[:17]) != value[17]:
        return f"check character should be {credit_code_check(value[:17])}, got {value[17]}"
    return None


def make_id_number(rng: random.Random, *, born: date | None = None, male: bool | None = None,
                   area: str | None = None) -> str:
    """A synthetic ID number with a valid checksum (never a real person's).

    ``area`` must be a real division code (``validate_id_number`` refuses others); the
    default is a Nanjing district. ``born`` is the caller's: a future one makes an ID
    that ``validate_id_number`` refuses, on purpose for tests of that rule.
    """
    if area is not None and division_name(area) is None:
        raise ValueError(f"area {area} is not an administrative division (GB/T 2260)")
    area = area or rng.choice([a for a in NANJING_DIVISIONS if a != "320100"])
    born = born or date(rng.randint(1960, 2004), rng.randint(1, 12), rng.randint(1, 28))
    seq = rng.randint(0, 99) * 10 + rng.randrange(0, 10)
    if male is not None and (seq % 2 == 1) != male:
        seq = seq + 1 if seq < 999 else seq - 1
    first17 = f"{area}{born:%Y%m%d}{seq:03d}"
    return first17 + id_check_char(first17)


class People:
    """Synthetic people who are never the same person twice.

    ID numbers of one birth date, area and sex share only 500 sequence numbers, and even
    unconstrained draws repeat now and then (about one set of 5,000 in 150); wherever two
    draws must be two people (tests, the demo, the benchmarks), a repeat would make them
    one. ``avoid``: four-digit endings (before the check character) not to hand out, such
    as the simulators' failure switches.
    """

    def __init__(self, rng: random.Random | None = None, *,
                 avoid: frozenset[str] = frozenset()) -> None:
        self._rng = rng or random.Random()
        self._avoid = avoid
        self._issued: set[str] = set()

    def new(self, *, born: date | None = None, male: bool | None = None,
            area: str | None = None) -> str:
        """An ID number not handed out before (``make_id_number``'s arguments)."""
        while True:
            id_number = make_id_number(self._rng, born=born, male=male, area=area)
            if id_number not in self._issued and id_number[-5:-1] not in self._avoid:
                self._issued.add(id_number)
                return id_number


def make_credit_code(rng: random.Random) -> str:
    """A synthetic unified social credit code (registration 9, type 1, Nanjing area)."""
    area = rng.choice([a for a in NANJING_DIVISIONS if a != "320100"])
    body = "".join(rng.choice(_USCC_ALPHABET[:10] + "ABCDEFGHJKLMNPQRTUWXY") for _ in range(9))
    first17 = f"91{area}{body}"
    return first17 + credit_code_check(first17)
