"""Who a transaction is about, as keyed hashes: find a person's or unit's transactions
without storing their identifiers in the clear.

The journal keys a transaction by correlation id; a caseworker asks by ID number
(居民身份证号) or unit credit code (统一社会信用代码). At write time the journal finds
every such identifier in the transaction's business key (``<USCC>:<ID>``, ``psn:<ID>``,
a bare ID, ...), normalises it (upper case, a trailing ``x`` as ``X``) and stores
``subject_hash(key, kind, value)``: HMAC-SHA256 under a secret of the deployment
(``subject_hash_key``), so the hash table alone does not let anyone test guessed ID
numbers (an unkeyed hash of an 18-character ID with a known layout is cheap to invert).
The kind is part of the MAC input: an identifier found as a person never matches a unit
search, even for a string that passes both checksums.

Extraction accepts a token on its check character alone (cheap, on the journal's hot
path); a search validates the whole rule (``contracts.checks``: area code, birth date,
check character) and names the field it refuses. Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Final, Literal

from contracts.checks import check_credit_code, check_id_number
from contracts.ids import credit_code_check, id_check_char

__all__ = ["KINDS", "SubjectKind", "find_subjects", "normalise", "subject_hash",
           "subject_hashes", "valid_subject"]

SubjectKind = Literal["person", "unit"]
KINDS: Final[tuple[SubjectKind, ...]] = ("person", "unit")

_TOKEN: Final = re.compile(r"(?<![0-9A-Z])[0-9A-Z]{18}(?![0-9A-Z])")
_ID_SHAPE: Final = re.compile(r"\d{17}[\dX]")
_USCC_CHARS: Final = frozenset("0123456789ABCDEFGHJKLMNPQRTUWXY")


def normalise(value: str) -> str:
    """Trimmed, upper case: ``x`` and ``X`` are the same check character."""
    return value.strip().upper()


def _is_id(token: str) -> bool:
    return bool(_ID_SHAPE.fullmatch(token)) and id_check_char(token[:17]) == token[17]


def _is_uscc(token: str) -> bool:
    return all(c in _USCC_CHARS for c in token) and credit_code_check(token[:17]) == token[17]


def find_subjects(*texts: str) -> list[tuple[SubjectKind, str]]:
    """Every ID number and credit code in ``texts`` (normalised, each once, in order),
    accepted on the check character alone."""
    found: list[tuple[SubjectKind, str]] = []
    for text in texts:
        for token in _TOKEN.findall(text.upper()):
            if _is_id(token) and ("person", token) not in found:
                found.append(("person", token))
            if _is_uscc(token) and ("unit", token) not in found:
                found.append(("unit", token))
    return found


def subject_hash(key: bytes, kind: SubjectKind, value: str) -> str:
    """HMAC-SHA256 (hex) of ``kind:value`` under ``key``; ``value`` normalised first."""
    return hmac.new(key, f"{kind}:{normalise(value)}".encode(), hashlib.sha256).hexdigest()


def subject_hashes(key: bytes, *texts: str) -> list[tuple[SubjectKind, str]]:
    """``(kind, hash)`` of every subject ``find_subjects`` finds in ``texts``."""
    return [(kind, subject_hash(key, kind, value)) for kind, value in find_subjects(*texts)]


def valid_subject(kind: SubjectKind, value: str) -> str:
    """The normalised identifier, or ``ValueError`` with the reason (the value is never
    quoted: the reason may be shown to whoever typed it, and logged)."""
    return check_id_number(value) if kind == "person" else check_credit_code(value)
