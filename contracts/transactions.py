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

from contracts.assistance import SETTLEMENT_LANE as ASSISTANCE_SETTLEMENT_LANE
from contracts.assistance import SETTLEMENT_SYNC as ASSISTANCE_SETTLEMENT
from contracts.channels import CHANNEL_NAMES
from contracts.difficulty import CORE_SYNC as DIFFICULTY_SYNC
from contracts.difficulty import DEPARTMENTS as DIFFICULTY_DEPARTMENTS
from contracts.difficulty import PLATFORM_PUSH as DIFFICULTY_PUSH
from contracts.difficulty import partner_of as difficulty_partner
from contracts.difficulty import status_type as difficulty_status
from contracts.taxcat import OPS, STORED_ANSWERS
from contracts.transfer import CORE_STATUS as TRANSFER_CORE
from contracts.transfer import INFNO_PULL as TRANSFER_PULL
from contracts.transfer import INFNO_STATUS as TRANSFER_STATUS
from contracts.transfer import INTAKE as TRANSFER_INTAKE
from contracts.transfer import PLATFORM_STATUS as TRANSFER_PLATFORM
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
    Transaction("difficulty.sunshine", "sunshine", "out", "sync", "POST <endpoint>/fees",
                "inline", None, "救助费用表推送阳光惠民",
                "F7: with the 救助人员 table: the settlements of the year the hub holds, paged, "
                "masked; once a day per row (assistance_sunshine_log)"),
    Transaction("difficulty.sunshine", "sunshine", "out", "sync",
                "POST <endpoint>/institutions", "inline", None, "机构表推送阳光惠民",
                "F7: with the 救助人员 table: core's 定点医疗机构, paged; once a day per row"),
    Transaction("difficulty.sunshine", "core", "out", "sync", "H4004", "inline", None,
                "定点医疗机构查询",
                "F7: AssistanceCorePort.institutions, for 阳光惠民's 机构 table"),
    Transaction("assistance.expenses_query", "assistance", "in", "sync",
                "POST /partners/assistance/queries/expenses", "api", None, "医疗费用查询",
                "F7: signed by the platform; only for a person held as 困难人员 (else 404/403 "
                "with the reason), inside their assistance periods; masked, amounts fen-exact"),
    Transaction("assistance.expenses_query", "core", "out", "sync", "H4002", "api", None,
                "医疗费用查询(核心)", "F7: AssistanceCorePort.expenses, within the platform's "
                "query"),
    Transaction(ASSISTANCE_SETTLEMENT, "core", "in", "sync", "H4005", "ingress", None,
                "结算费用同步事件",
                "F7: POST /partners/core/settlements, signed by core; a recipient's settlement "
                "is recorded once per settlement id, anyone else's refused (NOT_RECIPIENT)"),
    Transaction(ASSISTANCE_SETTLEMENT, "assistance", "out", "sync",
                "POST <endpoint>/settlements", ASSISTANCE_SETTLEMENT_LANE, "default",
                "结算费用同步", "F7: signed; the platform deduplicates on X-Hub-Serial; "
                "retried, then dead-lettered (an alert)"),
    Transaction("assistance.settlement_run", "core", "out", "sync", "H4003", "admin", None,
                "救助对象结算信息提取", "F7: AssistanceCorePort.month_settlements, by a month's "
                "run; core's header must match its records to the fen"),
    Transaction("assistance.settlement_run", "assistance", "out", "sync",
                "POST <endpoint>/settlement-data", "admin", None, "医疗救助结算数据推送",
                "F7: monthly, paged with the month's header (totals); resumable, each row "
                "once (POST /admin/assistance/settlement-runs)"),
)
"""F7 困难人员数据交互平台 (contracts/DIFFICULTY.md)."""


_TRANSFER: Final[tuple[Transaction, ...]] = (
    Transaction(TRANSFER_INTAKE, "transfer", "in", "sync", TRANSFER_PULL, "poller", None,
                "转移接续申请下载",
                "F9: the hub pulls pages after its durable cursor (ticker and POST "
                "/admin/transfers/pull); each application checked, stored once by number"),
    Transaction(TRANSFER_INTAKE, "core", "out", "sync", "H1106", "transfer.intake",
                "default", "转出转入地校验",
                "F9: after tax's arrears (QueryPersonArrears); skipped for a 未联网地区 "
                "(参保凭证 instead); window, platform and 我的南京 transfer_out alike"),
    Transaction(TRANSFER_PLATFORM, "transfer", "out", "sync", TRANSFER_STATUS,
                "transfer.platform", "default", "转移接续办理状态上传",
                "F9: result/status back to the platform; it deduplicates on serial"),
    Transaction(TRANSFER_CORE, "core", "out", "sync", "H4201", "core.transfer", "default",
                "转移接续结果/状态",
                "F9: every decided status to core; core deduplicates on serial"),
)
"""F9 转移接续 (contracts/TRANSFER.md)."""


_REFUNDS: Final[tuple[Transaction, ...]] = (
    Transaction("refund.arrival", "core", "in", "sync", "H7001", "ingress", None,
                "退费审核通过",
                "F10: POST /partners/core/refunds; the hub answers once the broker confirmed"),
    Transaction("refund.withdraw", "core", "in", "sync", "H7002", "ingress", None, "退费回退",
                "F10: withdrawn before finance pays; finance never pays a withdrawn order"),
    Transaction("refund.order", "core", "in", "sync", "H7003", "ingress", None, "退费账户更正",
                "F10: the order re-sent to finance as a new version, same order number"),
    Transaction("refund.arrival", "tax", "out", "sync", "QueryPersonArrivals",
                "refund.arrival", "default", "到账查询",
                "F10 (1916, 2260): a refund for money that never arrived is refused "
                "(QueryUnitArrivals for a unit's order)"),
    Transaction("refund.order", "erp_finance", "out", "sync", "POST <endpoint>/refund/orders",
                "refund.finance", "default", "退费支付指令",
                "F10: REST, signed JSON, amounts as strings to the fen; finance answers per "
                "order; 已退费 comes back on POST /partners/erp_finance/callback"),
    Transaction("refund.withdraw", "erp_finance", "out", "sync",
                "POST <endpoint>/refund/orders/{no}/withdraw", "refund.finance", "default",
                "退费回退", "F10: on the same lane as the order, ordered per order"),
    Transaction("refund.core_status", "erp_finance", "in", "sync",
                "POST /partners/erp_finance/callback", "ingress", None, "已退费标志",
                "F10: a 已退费 for a withdrawn order is an alert and answered 409"),
    Transaction("refund.core_status", "core", "out", "sync", "H7101", "refund.core",
                "default", "退费状态", "F10: refunded / failed / withdrawn; core deduplicates "
                "on serial"),
    Transaction("refund.closure", "erp_finance", "out", "sync",
                "POST <endpoint>/refund/closures", "refund.closure", "default", "退费销号",
                "F10: every 旬 (1-10, 11-20, 21-end), frozen on the first run, totals checked; "
                "to tax monthly as RefundWriteOff per order"),
    Transaction("refund.payments", "channel.online_hall", "in", "sync",
                "POST /channels/online_hall/refunds/payments", "ingress", None,
                "单位退费支付明细查询", "F10 (2576, 2596): answered from finance"),
    Transaction("refund.payments", "erp_finance", "out", "sync",
                "POST <endpoint>/refund/payments/query", "ingress", None,
                "单位退费支付明细查询", "F10: within the online hall's call"),
)
"""F10 退费 through 用友 finance (contracts/FINANCE.md)."""


_DRUGS: Final[tuple[Transaction, ...]] = (
    Transaction("drugs.order", "drug_mall", "in", "sync", "POST /partners/drugs/orders",
                "ingress", None, "线上购药下单",
                "F11: the sale gate: catalogue, 单次限量, 处方, 医保资格, stock held"),
    Transaction("drugs.order", "core", "out", "sync", "H6101", "ingress", None, "医保资格校验",
                "F11 (3280): within the mall's call"),
    Transaction("drugs.order", "prescription", "out", "sync", "hospRxDetlQuery", "ingress",
                None, "处方查询",
                "F11 (3325-3326): SM4/SM3withSM2 envelope, every answer verified"),
    Transaction("drugs.catalogue", "core", "out", "sync", "H6102", "admin", None,
                "处方药标识同步", "F11 (3270-3271): pulled on the clock and on demand"),
    Transaction("drugs.pharmacy.order", "pharmacy_erp", "out", "sync", "POST <endpoint>/orders",
                "pharmacy.orders", "default", "药房订单推送", "F11 (3330-3331): paid orders"),
    Transaction("drugs.pharmacy.refund", "pharmacy_erp", "out", "sync",
                "POST <endpoint>/refunds", "pharmacy.orders", "default", "退款申请",
                "F11 (3089, 3154-3170): a return's refund"),
    Transaction("drugs.pharmacy.event", "pharmacy_erp", "in", "sync",
                "POST /partners/pharmacy/events", "ingress", None, "接单/发货/退款结果",
                "F11: a repeated event_id is a replay"),
    Transaction("drugs.pharmacy.stock", "pharmacy_erp", "in", "sync",
                "POST /partners/pharmacy/stock", "ingress", None, "库存同步",
                "F11: a delta taking stock below zero is refused whole"),
    Transaction("drugs.pharmacy.stock", "pharmacy_erp", "out", "sync", "GET <endpoint>/stock",
                "admin", None, "库存查询", "F11: the hub pulls a snapshot"),
    Transaction("drugs.reconciliation", "pharmacy_erp", "out", "sync",
                "GET <endpoint>/reconciliation", "admin", None, "对账",
                "F11: the day's totals and lines; totals that are not their lines refused"),
    Transaction("drugs.supervision.order", "supervision", "out", "sync",
                "POST <endpoint>/records", "supervision.push", "default", "订单及用药情况推送",
                "F11 (3335-3336): paid orders in real time; idempotent per order"),
    Transaction("drugs.supervision.refund", "supervision", "out", "sync",
                "POST <endpoint>/records", "supervision.push", "default", "退款推送",
                "F11: refunds and returns as they happen"),
)
"""F11 线上购药 (contracts/DRUG_SALES.md)."""


_VOUCHER: Final[tuple[Transaction, ...]] = (
    Transaction("voucher.decode", "medins", "in", "sync", "POST /voucher/decode", "ingress",
                None, "电子凭证解码/人员信息", "F13 (89-97): SM2-signed QR verified offline "
                "(forged, expired, another person's refused); the person from core"),
    Transaction("voucher.decode", "core_voucher", "out", "sync", "1101", "ingress", None,
                "人员信息获取", "F13: within the institution's call; masked unless full view"),
    Transaction("voucher.settlement", "medins", "in", "async", "POST /voucher/settlements",
                "ingress", None, "凭证结算", "F13: one use per voucher, atomic in the database; "
                "fee lines must add up; money never a float"),
    *(Transaction("voucher.settlement", "core_voucher", "out", "sync", infno, "core.voucher",
                  "default", name, "F13: core deduplicates on the request key")
      for infno, name in (("2207", "门诊结算"), ("2304", "住院出院结算"),
                          ("2102", "药店购药结算"))),
    Transaction("voucher.kiosk_business", "kiosk", "in", "async",
                "POST /kiosk/business/{name}/{ref}", "ingress", None, "工行一体机业务办理",
                "F13 (28): signed per device, rate-limited; enroll, change, reprint"),
    *(Transaction("voucher.kiosk_business", "core_voucher", "out", "sync", infno,
                  "core.voucher", "default", name, "F13: one effect per device and ref")
      for infno, name in (("V2101", "参保登记"), ("V2102", "信息变更"), ("V2103", "参保凭证补打"))),
    Transaction("voucher.query", "kiosk", "in", "sync", "POST /kiosk/query/{name}", "ingress",
                None, "工行一体机查询", "F13 (28): 5 queries, signed per device, rate-limited, "
                "masked"),
    Transaction("voucher.query", "wechat", "in", "sync", "POST /wechat/query/{name}", "ingress",
                None, "微信查询", "F13 (33): 5 queries, signed per account, rate-limited, masked"),
    *(Transaction("voucher.query", "core_voucher", "out", "sync", infno, "ingress", None, name,
                  "F13: within the kiosk's or WeChat's call")
      for infno, name in (("V5101", "缴费记录查询"), ("V5102", "账户余额查询"),
                          ("V5103", "结算记录查询"), ("V5104", "参保状态查询"))),
    Transaction("voucher.person_upload", "core", "in", "async", "POST /voucher/persons",
                "ingress", None, "参保人员基础信息上传", "F13 (79): signed by core"),
    Transaction("voucher.person_upload", "voucher_library", "out", "sync", "V1001",
                "voucher.library", "default", "省级凭证库实时上传",
                "F13 (79): the library deduplicates on the key"),
    Transaction("voucher.medtax_record", "core", "in", "async", "POST /voucher/medtax",
                "ingress", None, "医税平台数据", "F13 (37): 310/510/390 only, else the whole "
                "batch is refused naming records[i].insutype"),
    Transaction("voucher.medtax_record", "medtax", "out", "sync", "V3101", "voucher.medtax",
                "default", "医税平台推送", "F13 (37): one effect per record"),
)
"""F13 医保电子凭证, query channels, 医税平台 (contracts/VOUCHER.md)."""


_RECON: Final[tuple[Transaction, ...]] = (
    *(Transaction("recon.national", "institutions", "in", "sync", infno, "ingress", None, name,
                  "F14: national envelope at POST /partners/institutions/national, signed as "
                  "inst_<code>" + note)
      for infno, name, note in (
          ("3201", "对总账", "; compared with core's ledger: 平 / 不平 with the fields"),
          ("9101", "文件上传", "; the 3202 detail file (zip of tab-separated rows)"),
          ("3202", "明细对账", " (73): diagnosed down to the setl_id and field"),
          ("9102", "文件下载", "; the result file, only to its institution"))),
    Transaction("recon.national", "core_ledger", "out", "sync", "3201", "ingress", None,
                "核心对总账", "F14: within the institution's call: core's totals and detail "
                "for the institution and day"),
    Transaction("recon.run", "institutions", "out", "sync", "3201", "admin", None,
                "中心发起对账", "F14: POST /admin/reconciliation/runs asks each institution"),
    Transaction("recon.resolve.reverse", "institutions", "out", "sync", "2208",
                "institution.resolve", "default", "单边帐冲正",
                "F14 (75, 159): institution-only; by rule after the hold or by a caseworker; "
                "re-reconciled after"),
    Transaction("recon.resolve.complete", "institutions", "out", "sync", "H3203",
                "institution.resolve", "default", "单边帐补记",
                "F14: core-only; audited; re-reconciled after"),
    Transaction("recon.notice", "mobile_payment", "in", "sync", "H3205", "ingress", None,
                "移动支付/电子处方结算通知", "F14 (53, 55): becomes a row of the detail"),
)
"""F14 对账 and 单边帐 with designated institutions (contracts/INSTITUTION_RECON.md)."""


_SERIOUS_ILLNESS: Final[tuple[Transaction, ...]] = (
    Transaction("insurer.share", "core", "in", "async", "H8501", "ingress", None,
                "一站式结算大病部分", "F15 (77): POST /partners/core/serious-illness/"
                "settlements; a 冲销 without its original refused"),
    Transaction("insurer.share", "insurer", "out", "sync", "POST <endpoint>/shares",
                "insurer.shares", "default", "大病保险结算推送",
                "F15: per person in order, a 冲销 after its original; one effect per setl_id"),
    Transaction("insurer.financing", "insurer", "out", "sync", "POST <endpoint>/financing",
                "insurer.financing", "default", "筹资通知",
                "F15 (29, 39): paying residents from the return files × 110 元, schedule"),
    Transaction("insurer.clue", "insurer", "out", "sync", "POST <endpoint>/clues",
                "insurer.clues", "default", "疑点数据线索", "F15 (123, 126): audited"),
    Transaction("insurer.batch", "insurer", "out", "sync", "POST <endpoint>/batches/{kind}/"
                "{period}", "admin", None, "清算/轧差/分析报告",
                "F15 (28, 71, 75): header totals checked; a failed send resumes"),
    Transaction("insurer.batch", "insurer", "in", "sync", "GET <endpoint>/batches/{kind}/"
                "{period}", "admin", None, "赔付明细", "F15 (75): quarterly; totals checked"),
    Transaction("insurer.payment", "insurer", "in", "sync", "POST /partners/insurer/payments",
                "ingress", None, "赔付到账回执", "F15 (111): closes the claim's time limit"),
)
"""F15 大病保险承办机构 (contracts/SERIOUS_ILLNESS.md)."""


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
                                                *_DIFFICULTY, *_TRANSFER, *_REFUNDS,
                                                *_DRUGS, *_VOUCHER, *_RECON,
                                                *_SERIOUS_ILLNESS)
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
