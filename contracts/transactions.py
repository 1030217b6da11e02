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

from contracts.channels import CHANNEL_NAMES
from contracts.difficulty import CORE_SYNC as DIFFICULTY_SYNC
from contracts.difficulty import DEPARTMENTS as DIFFICULTY_DEPARTMENTS
from contracts.difficulty import PLATFORM_PUSH as DIFFICULTY_PUSH
from contracts.difficulty import partner_of as difficulty_partner
from contracts.difficulty import status_type as difficulty_status
from contracts.taxcat import OPS, STORED_ANSWERS
from contracts.warnings import DEPARTMENTS

__all__ = ["DOC_PATH", "TRANSACTIONS", "Transaction", "render_markdown"]

DOC_PATH: Final = Path(__file__).resolve().parent / "TRANSACTIONS.md"


@dataclass(frozen=True)
class Transaction:
    """One wire leg of a hub message type."""

    type: str
    """Hub message type (broker routing key)."""
    partner: str
    """``core``, ``tax`` or ``channel.<name>`` (a citizen channel, F1)."""
    direction: Literal["in", "out"]
    """``in``: partner -> hub; ``out``: hub -> partner."""
    mode: Literal["sync", "async"]
    """``sync``: the answer on the same call is the outcome; ``async``: only a receipt."""
    operation: str
    """On the wire: national ``infno`` (core) or SOAP operation (tax)."""
    route: str | None
    """Hub lane handling the leg; ``ingress`` = the HTTP ingress alone; ``admin`` = called
    directly by the admin API (no lane); ``api`` = the query API (no lane, own pool);
    ``poller`` = the return-file poller (no lane); ``inline`` = called inside another lane's
    handler (that lane retries it)."""
    policy: str | None
    """Key in ``partners.<partner>.policies`` the hub retries this leg with; None = no retry."""
    name: str
    """Chinese business name."""
    note: str = ""


_HAND: Final[tuple[Transaction, ...]] = (
    Transaction("tax.feedback", "tax", "in", "sync", "FeedbackNotify", "tax.feedback",
                "default", "受理结果反馈",
                "tax retries until retStatus S; correlated to the request by ywlsh"),
    Transaction("core.sync_status", "core", "out", "sync", "H9201", "core.sync", "default",
                "税务同步状态回写", "core deduplicates on serial"),
    Transaction("core.employee.query", "core", "out", "sync", "H1102", "admin", None,
                "职工参保信息查询",
                "CorePort.get_employee: the resend API (补发) reads core's current state"),
    Transaction("core.arrivals", "tax_ftp", "in", "async", "FTP RETR", "poller", None,
                "回盘文件", "polled from tax's FTP; header/trailer checked; processed once "
                "per content (contracts/RETURNFILES.md)"),
    Transaction("core.arrivals", "core", "out", "sync", "H3101", "poller", None,
                "社保费到账批次", "core deduplicates on the batch id; the poller resumes"),
    Transaction("channel.application", "channel", "in", "async",
                "POST /channels/{channel}/applications", "ingress", None, "渠道申请",
                "signed (HMAC-SHA256) or API key; 202 once stored and confirmed by the broker"),
    Transaction("channel.application", "core", "out", "sync", "H2501", "channel.intake",
                "default", "渠道申请登记",
                "after tax queries for the rules (community, arrears, contributions); then "
                "one tax submit per catalogue operation"),
    Transaction("channel.review", "core", "in", "async", "H2502", "channel.review", "default",
                "申请审核结果",
                "在职转退休 and 单位信息维护 wait for core's review (人员复核, 年限补缴审核, "
                "单位信息审核); approved: the reviewed data goes to tax; not: the channel is told"),
    Transaction("channel.application", "core", "out", "sync", "H1106", "channel.intake",
                "default", "转出转入地校验",
                "基本医疗保险转出: the 转入地 must hold a normal enrollment and no pending 代办 "
                "business (core asks the 医保信息平台); refused naming payload.target_division"),
    *(Transaction(f"channel.result.{name}", f"channel.{name}", "out", "sync",
                  "POST callback_url", f"channel.{name}", "channel", "申请结果推送",
                  "signed like the channel's requests; retried, then dead-lettered")
      for name in CHANNEL_NAMES),
    Transaction("core.record.query", "core", "out", "sync", "H1103", "admin", None,
                "单位/灵活/居民参保信息查询",
                "CorePort.get_record: the resend API (补发) reads core's current state"),
    Transaction("warnings.run", "core", "out", "sync", "H1107", "admin", None,
                "年度个人自付查询",
                "F8: CorePort.yearly_self_paid, asked by a month's warning run "
                "(contracts/WARNINGS.md)"),
    *(Transaction(f"warnings.{name}", f"dept.{name}", "out", "sync",
                  "POST /warnings/{department}", f"warnings.{name}", "default",
                  f"高额费用预警名单推送 ({title})",
                  "signed; one record per department+month+person, the department "
                  "deduplicates on the serial; retried (warnings.policy), then dead-lettered")
      for name, title in DEPARTMENTS.items()),
)


_UNION: Final[tuple[Transaction, ...]] = (
    Transaction("union.standards", "trade_union", "in", "sync",
                "PUT /partners/union/standards/{year}", "ingress", None,
                "申请互助待遇人员清单/给付标准/审核规则",
                "F12: signed by the union; the year's tables replace the last"),
    Transaction("union.case", "trade_union", "in", "sync", "POST /partners/union/cases",
                "ingress", None, "互助给付申请",
                "F12: signed; images checked from their headers (JPG 150 dpi colour, TIF 300 "
                "dpi black-and-white, classified and named); 受理 or 不予受理 at once"),
    Transaction("union.final", "trade_union", "in", "sync",
                "POST /partners/union/cases/{case_no}/final", "ingress", None, "终审结案通知",
                "F12: starts the archive timer (5 working days)"),
    *(Transaction(type_, "trade_union", "out", "sync", "POST /union/notices", "union.notify",
                  "default", name, "F12: signed; the union deduplicates on X-Hub-Serial; "
                  "retried, then dead-lettered; 补发 by a caseworker" + note)
      for type_, name, note in (
          ("union.notice.acceptance", "受理结果通知", " (to the unit and the city union)"),
          ("union.notice.closure", "结案/理算结果回传", " (contracts/UNION_CASES.md)"),
          ("union.notice.archive", "档案返还通知", ""))),
)
"""F12 trade-union mutual aid (工会互助)."""


_DIFFICULTY: Final[tuple[Transaction, ...]] = (
    Transaction("difficulty.list", "difficulty_<dept>", "in", "sync",
                "POST /partners/departments/{dept}/lists", "ingress", None,
                "困难人员增减名单",
                "F7: signed by the department; each row checked (bad rows answered with row, "
                "field, reason), 比对, then 初审/复核; also as a CSV/XLSX file or one record "
                "by a caseworker (admin)"),
    Transaction(DIFFICULTY_PUSH, "assistance", "out", "sync", "POST <endpoint>/recipients",
                "assistance.push", "default", "救助对象推送医疗救助平台",
                "F7: after 复核; signed; the platform deduplicates on X-Hub-Serial"),
    Transaction(DIFFICULTY_SYNC, "core", "out", "sync", "H4001", "core.difficulty", "default",
                "救助身份进入/退出同步",
                "F7: real time, ordered per person; a failure alerts (提醒预警) and is "
                "written to the 同步日志; core deduplicates on serial"),
    *(Transaction(difficulty_status(name), difficulty_partner(name), "out", "sync",
                  "POST <endpoint>/status", f"difficulty.{name}", "default",
                  f"救助待遇标识同步情况 ({title})",
                  "F7: per record, synced or refused with the reason; signed; a caseworker "
                  "resends a record or a month (audited)")
      for name, title in DIFFICULTY_DEPARTMENTS.items()),
    Transaction("difficulty.person_query", "assistance", "in", "sync",
                "POST /partners/assistance/queries/person", "api", None, "人员认定",
                "F7: signed by the platform; answered from the held identities, masked"),
    Transaction("difficulty.sunshine", "sunshine", "out", "sync", "POST <endpoint>/recipients",
                "inline", None, "救助人员表推送阳光惠民",
                "F7: daily (admin run or ticker), paged, masked; once a day per row (同步日志)"),
)
"""F7 困难人员数据交互平台 (contracts/DIFFICULTY.md)."""


def _catalogue_rows() -> tuple[Transaction, ...]:
    """Two legs per catalogue operation (``contracts.taxcat``)."""
    rows: list[Transaction] = []
    for o in OPS:
        policy = "default"
        if o.kind == "submit":
            rows.append(Transaction(o.msg_type, "core", "in", "async", o.core_infno, "ingress",
                                    None, f"{o.title}事件",
                                    "the hub answers once the broker confirmed"))
            rows.append(Transaction(o.msg_type, "tax", "out", "async", o.name,
                                    f"tax.{o.subject}", o.msg_type
                                    if o.msg_type == "tax.employee.enroll" else policy, o.title,
                                    "受理回执, then FeedbackNotify" + (
                                        f"; {o.doc}" if o.doc else "")))
        elif o.name == "CompareBatchNotify":
            rows.append(Transaction(o.msg_type, "tax", "in", "sync", o.name, "ingress", None,
                                    o.title, "the hub answers S once the broker confirmed"))
            rows.append(Transaction(o.msg_type, "tax_ftp", "out", "sync", "FTP RETR",
                                    "tax.compare", "default", "比对批次文件",
                                    "the batch file named in the push, from tax's FTP; "
                                    "compared with core (H1105) into a CSV/XLSX report"))
            rows.append(Transaction(o.msg_type, "core", "out", "sync", "H1105", "inline",
                                    None, "比对: 核心参保信息快照",
                                    "CorePort.snapshot, within the tax.compare lane"))
        elif o.kind == "push":
            rows.append(Transaction(o.msg_type, "tax", "in", "sync", o.name, "ingress", None,
                                    o.title, "the hub answers S once the broker confirmed"))
            rows.append(Transaction(o.msg_type, "core", "out", "sync", o.core_infno,
                                    "core.tax_push", policy, o.title,
                                    "core deduplicates on serial"))
        elif o.kind == "query" and o.name in STORED_ANSWERS:
            rows.append(Transaction(o.msg_type, "tax_ftp", "in", "sync", o.name, "api", None,
                                    o.title, "answered from the stored return-file records "
                                    f"({', '.join(STORED_ANSWERS[o.name])}) F5 fetched from "
                                    "tax's FTP; tax is not called"))
        elif o.kind == "query":
            rows.append(Transaction(o.msg_type, "tax", "out", "sync", o.name, "api", None,
                                    o.title, "query lane: own connection pool and timeout"))
        else:
            rows.append(Transaction(o.msg_type, "tax", "in", "sync", o.name, "ingress", None,
                                    o.title, "answered with core's records"))
            rows.append(Transaction(o.msg_type, "core", "out", "sync", o.core_infno, "ingress",
                                    None, o.title, "synchronous, within tax's call"))
    return tuple(rows)


TRANSACTIONS: Final[tuple[Transaction, ...]] = (*_catalogue_rows(), *_HAND, *_UNION,
                                                *_DIFFICULTY)
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
        "alone, `admin` a direct call of the admin API, `api` the query API (own pool), "
        "`poller` the return-file poller, `inline` a call inside another lane's handler; "
        "retry policy is the key in `partners.<partner>.policies` (`default` when the "
        "type has none of its own), and — means the hub does not retry (the sender does).\n\n"
        + _HEADER + rows
    )


def main() -> int:
    DOC_PATH.write_text(render_markdown(), encoding="utf-8")
    print(f"wrote {DOC_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
