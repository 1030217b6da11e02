"""F15 lanes: a share delivered gets its claim's due day; a 冲销 whose original never reached
the insurer is refused naming ``orig_setl_id`` and never sent; failures say why on the row."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

import pytest

from contracts.errors import BusinessRejected, PartnerUnavailable
from contracts.messages import partner_serial
from contracts.serious_illness import share_message
from routes.serious_illness import SERIOUS_ILLNESS_ROUTES, push_share, share_failed

ID = "11010519491231002X"


class _Store:
    def __init__(self, rows: dict[str, dict[str, Any]] | None = None) -> None:
        self.rows = rows or {}
        self.moves: list[tuple[str, str, str, str]] = []

    async def share(self, setl_id: str) -> dict[str, Any] | None:
        return self.rows.get(setl_id)

    async def set_share(self, setl_id: str, status: str, *, expect: Iterable[str],
                        reason: str = "", delivered_on: str = "", due_on: str = "") -> bool:
        self.moves.append((setl_id, status, reason, due_on))
        return True

    async def set_financing(self, fid: str, status: str, *, reason: str = "") -> None: ...

    async def set_clue(self, clue_id: str, status: str, *, reason: str = "") -> None: ...


class _Insurer:
    def __init__(self) -> None:
        self.shares: list[tuple[dict[str, Any], str]] = []

    async def push_share(self, share: dict[str, Any], *, serial: str) -> None:
        self.shares.append((share, serial))


class _Deps:
    def __init__(self, store: _Store) -> None:
        self.insurer = _Insurer()
        self.serious_illness = store


def _payload(setl_id: str, kind: str = "settle", orig: str = "") -> dict[str, Any]:
    return {"kind": kind, "setl_id": setl_id, "orig_setl_id": orig, "id_number": ID,
            "settled_at": "2026-11-27 09:00:00", "serious_illness_pay": "10.00"}


async def test_a_delivered_share_gets_its_due_day_and_carries_the_serial() -> None:
    deps = _Deps(_Store())
    msg = share_message(_payload("S1"))
    out = await push_share(msg, deps, today=date(2026, 11, 27))  # type: ignore[arg-type]
    assert out.txn is not None and out.txn.status == "delivered"
    assert deps.insurer.shares == [(msg.payload, partner_serial(msg))]
    assert deps.serious_illness.moves == [("S1", "delivered", "", "2026-12-18")]
    assert [r.name for r in SERIOUS_ILLNESS_ROUTES] == ["insurer.shares", "insurer.financing",
                                                        "insurer.clues"]


@pytest.mark.parametrize("orig", [None, "rejected", "dead"])
async def test_a_reversal_of_an_original_not_delivered_is_refused_and_never_sent(
        orig: str | None) -> None:
    rows = {} if orig is None else {"S1": {"status": orig}}
    deps = _Deps(_Store(rows))
    msg = share_message(_payload("R1", "reverse", "S1"), after="k")
    with pytest.raises(BusinessRejected, match="orig_setl_id"):
        await push_share(msg, deps)  # type: ignore[arg-type]
    assert deps.insurer.shares == []


async def test_a_reversal_after_its_delivered_original_goes_without_a_due_day() -> None:
    deps = _Deps(_Store({"S1": {"status": "delivered"}}))
    msg = share_message(_payload("R1", "reverse", "S1"), after="k")
    await push_share(msg, deps, today=date(2026, 11, 27))  # type: ignore[arg-type]
    assert deps.serious_illness.moves == [("R1", "delivered", "", "")]


async def test_failures_say_why_on_the_row() -> None:
    deps = _Deps(_Store())
    msg = share_message(_payload("S1"))
    out = await share_failed(msg, BusinessRejected("E1", "no", partner="insurer"), deps)
    assert out.txn is not None and out.txn.status == "rejected"
    out = await share_failed(msg, PartnerUnavailable("503", partner="insurer"), deps)
    assert out.txn is not None and out.txn.status == "dead"
    assert [(m[1], m[2].split(":")[0]) for m in deps.serious_illness.moves] == [
        ("rejected", "E1"), ("dead", "UNAVAILABLE")]
