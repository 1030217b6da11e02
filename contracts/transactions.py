"""Every transaction the hub knows, as one table: the source of ``contracts/TRANSACTIONS.md``.

One row per wire leg: a message type crossing one partner boundary in one
direction. The table is plain data on purpose (no imports from adapters or
routes); ``tests/unit/contracts/test_transactions.py`` checks it against the
routes, the adapters' wire constants, the shipped retry policies and the
rendered file. After changing it:

    .venv/bin/python -m contracts.transactions     # rewrite contracts/TRANSACTIONS.md
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

__all__ = ["DOC_PATH", "TRANSACTIONS", "Transaction", "render_markdown"]

DOC_PATH: Final = Path(__file__).resolve().parent / "TRANSACTIONS.md"


@dataclass(frozen=True)
class Transaction:
    """One wire leg of a hub message type."""

    type: str
    """Hub message type (broker routing key)."""
    partner: Literal["core", "tax"]
    direction: Literal["in", "out"]
    """``in``: partner -> hub; ``out``: hub -> partner."""
    mode: Literal["sync", "async"]
    """``sync``: the answer on the same call is the outcome; ``async``: only a receipt."""
    operation: str
    """On the wire: national ``infno`` (core) or SOAP operation (tax)."""
    route: str | None
    """Hub lane handling the leg; ``ingress`` = the HTTP ingress alone; ``admin`` = called
    directly by the admin API (no lane); None = not wired yet."""
    policy: str | None
    """Key in ``partners.<partner>.policies`` the hub retries this leg with; None = no retry."""
    name: str
    """Chinese business name."""
    note: str = ""


TRANSACTIONS: Final[tuple[Transaction, ...]] = (
    Transaction("tax.employee.enroll", "core", "in", "async", "H2101", "ingress", None,
                "职工参保登记事件",
                "core resends until answered; the hub answers after the broker confirms"),
    Transaction("tax.employee.enroll", "tax", "out", "async", "EmployeeEnroll", "tax.employee",
                "tax.employee.enroll", "职工参保登记",
                "tax answers a 受理回执 (slh); the result follows in FeedbackNotify"),
    Transaction("tax.feedback", "tax", "in", "sync", "FeedbackNotify", "tax.feedback",
                "default", "受理结果反馈",
                "tax retries until retStatus S; correlated to EmployeeEnroll/EmployeeStop "
                "by ywlsh"),
    Transaction("core.sync_status", "core", "out", "sync", "H9201", "core.sync", "default",
                "税务同步状态回写", "core deduplicates on serial"),
    Transaction("tax.employee.stop", "tax", "out", "async", "EmployeeStop", "tax.employee_stop",
                "default", "职工暂停/终止参保",
                "sent by resend (补发) with a chosen 停保日期; 受理回执 then FeedbackNotify"),
    Transaction("core.employee.query", "core", "out", "sync", "H1102", "admin", None,
                "职工参保信息查询",
                "CorePort.get_employee: the resend API (补发) reads core's current state"),
)
"""Every message type the hub knows, leg by leg."""

_HEADER: Final = (
    "| type | partner | direction | mode | wire operation | route | retry policy | 名称 "
    "| note |\n"
    "|---|---|---|---|---|---|---|---|---|\n"
)


def _cell(value: str | None, code: bool = True) -> str:
    if not value:
        return "—"
    text = value.replace("|", "\\|")
    return f"`{text}`" if code else text


def render_markdown() -> str:
    """The text of ``contracts/TRANSACTIONS.md``."""
    rows = "".join(
        f"| {_cell(t.type)} | {t.partner} | {t.direction} | {t.mode} | {_cell(t.operation)} "
        f"| {_cell(t.route)} | {_cell(t.policy)} | {t.name} | {_cell(t.note, code=False)} |\n"
        for t in TRANSACTIONS)
    return (
        "# Hub transactions\n\n"
        "Every message type the hub knows, one row per wire leg (generated from "
        "`contracts/transactions.py` by `python -m contracts.transactions`; do not edit by "
        "hand). Direction `in` is partner -> hub; mode `sync` means the answer on the same call "
        "is the outcome, `async` that it is only a receipt; route `ingress` is the HTTP ingress "
        "alone, `admin` a direct call of the admin API; retry policy is the key in "
        "`partners.<partner>.policies` (`default` when the "
        "type has none of its own), and — means the hub does not retry (the sender does).\n\n"
        + _HEADER + rows
    )


def main() -> int:
    DOC_PATH.write_text(render_markdown(), encoding="utf-8")
    print(f"wrote {DOC_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
