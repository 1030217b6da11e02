"""A caseworker's view of the journal: a person's or unit's transactions, and one
transaction's path hop by hop.

The journal is keyed by correlation id; the search goes through the subject hashes the
journal writes with every transaction (``storage.journal.TransactionSubject``,
``contracts.subjects``): the ID number or credit code asked for is validated with the
contracts' rules (a wrong check character is refused naming the field, before anything
is read), hashed with the same key, and matched. Every answer is masked unless the
caller asks to ``reveal`` (the API allows that to caseworkers and admins, audited).

Plain functions over the ``Journal``, returning dataclasses (``TxnRow``, ``Hop``) with
``as_dict()`` for JSON: the console (``api.console``) and the JSON API
(``api.ops``) share them.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from contracts.masking import mask_id, mask_text, mask_value
from contracts.subjects import SubjectKind, normalise, valid_subject
from storage.journal import Journal
from storage.times import utc

__all__ = ["FIELDS", "Hop", "InvalidSubject", "SubjectPage", "TxnRow", "mask_business_key",
           "masked_subject", "path", "search_by_subject", "subject_kind"]

FIELDS: Final[dict[SubjectKind, str]] = {"person": "person", "unit": "unit"}
"""The query field naming each kind (``GET /transactions?person=...`` / ``?unit=...``)."""

_USCC: Final = re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}")
_ID_SHAPE: Final = re.compile(r"\d{17}[\dXx]")


class InvalidSubject(ValueError):
    """The identifier searched for is not valid: ``field`` (person / unit) and ``reason``
    (never the value itself)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def mask_business_key(key: str) -> str:
    """``<unit credit code>:<ID number>`` with the ID masked whatever its form (a passport
    number too); any other key with ID numbers and phones masked wherever they appear."""
    unit, sep, rest = key.partition(":")
    if sep and rest and _USCC.fullmatch(unit):
        return f"{unit}:{mask_id(rest)}"
    return mask_text(key)


def masked_subject(kind: SubjectKind, value: str) -> str:
    """How a searched subject is shown and audited: an ID number masked, a credit code (a
    unit's public registration) as it is."""
    return mask_id(normalise(value)) if kind == "person" else normalise(value)


def subject_kind(text: str) -> SubjectKind:
    """An ID number when it looks like one (17 digits and a digit or X), else a unit."""
    return "person" if _ID_SHAPE.fullmatch(text.strip()) else "unit"


@dataclass(frozen=True)
class TxnRow:
    """One transaction as a search lists it (business key and reason masked unless
    revealed)."""

    correlation_id: str
    type: str
    business_key: str
    source: str
    status: str
    reason_code: str
    reason: str
    attempts: int
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["created_at"], d["updated_at"] = self.created_at.isoformat(), \
            self.updated_at.isoformat()
        return d


@dataclass(frozen=True)
class SubjectPage:
    """A page of one subject's transactions, newest first, and how many there are."""

    kind: SubjectKind
    subject: str
    """Masked (an ID number) or as it is (a credit code)."""
    total: int
    limit: int
    offset: int
    items: list[TxnRow]

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "subject": self.subject, "total": self.total,
                "limit": self.limit, "offset": self.offset,
                "items": [r.as_dict() for r in self.items]}


def _row(d: dict[str, Any], reveal: bool) -> TxnRow:
    return TxnRow(correlation_id=str(d["correlation_id"]), type=str(d["type"]),
                  business_key=str(d["business_key"]) if reveal
                  else mask_business_key(str(d["business_key"])),
                  source=str(d["source"]), status=str(d["status"]),
                  reason_code=str(d["reason_code"]), reason=mask_text(str(d["reason"])),
                  attempts=int(d["attempts"]), created_at=utc(d["created_at"]),
                  updated_at=utc(d["updated_at"]))


async def search_by_subject(journal: Journal, text: str, *, kind: SubjectKind | None = None,
                            limit: int = 50, offset: int = 0,
                            reveal: bool = False) -> SubjectPage:
    """The transactions about the person (ID number) or unit (credit code) ``text``.

    ``kind`` None: guessed from the shape (``subject_kind``). ``InvalidSubject`` naming the
    field when ``text`` fails the contracts' rules. ``reveal`` leaves business keys
    unmasked: the caller decides who may (the API: caseworker, admin; audited).
    """
    kind = kind or subject_kind(text)
    try:
        value = valid_subject(kind, text)
    except ValueError as exc:
        raise InvalidSubject(FIELDS[kind], str(exc)) from None
    rows, total = await journal.by_subject(kind, journal.subject_hash(kind, value),
                                           limit=limit, offset=offset)
    return SubjectPage(kind=kind, subject=masked_subject(kind, value), total=total,
                       limit=limit, offset=offset, items=[_row(r, reveal) for r in rows])


@dataclass(frozen=True)
class Hop:
    """One interaction-log row of a transaction, with its timing.

    ``ended`` is when the hop was logged (after the call), ``started`` that minus its
    duration; ``gap_ms`` the time from the previous hop's end to this one's start (None
    for the first; negative when hops overlapped, e.g. a feedback racing its receipt).
    """

    seq: int
    message_id: str
    partner: str
    hop: str
    operation: str
    direction: str
    outcome: str
    attempt: int
    started: datetime
    ended: datetime
    duration_ms: int
    gap_ms: int | None
    detail: Any

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["started"], d["ended"] = self.started.isoformat(), self.ended.isoformat()
        return d


async def path(journal: Journal, correlation_id: str) -> list[Hop] | None:
    """The hops of one transaction in the order they were logged; None when the journal
    knows neither the transaction nor any hop of it. Details are masked (again: they are
    masked when written)."""
    log = await journal.log_for(correlation_id)
    if not log and await journal.transaction(correlation_id) is None:
        return None
    hops: list[Hop] = []
    previous: datetime | None = None
    for seq, e in enumerate(log, start=1):
        ended = utc(e["at"])
        started = ended - timedelta(milliseconds=int(e["duration_ms"]))
        gap = None if previous is None else int((started - previous).total_seconds() * 1000)
        hops.append(Hop(seq=seq, message_id=str(e["message_id"]), partner=str(e["partner"]),
                        hop=str(e["hop"]), operation=str(e["type"]),
                        direction=str(e["direction"]), outcome=str(e["outcome"]),
                        attempt=int(e["attempt"]), started=started, ended=ended,
                        duration_ms=int(e["duration_ms"]), gap_ms=gap,
                        detail=mask_value(e["detail"])))
        previous = ended
    return hops
