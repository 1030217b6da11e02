"""The transaction table agrees with the code it describes, and TRANSACTIONS.md with the table."""

from __future__ import annotations

from pathlib import Path

from adapters.core.translate import (
    CORE_EVENT_TYPES,
    INFNO_DRUG_CATALOGUE,
    INFNO_DRUG_ELIGIBILITY,
    INFNO_EMPLOYEE_QUERY,
    INFNO_ENROLL,
    INFNO_EXPENSES,
    INFNO_INSTITUTIONS,
    INFNO_SETTLEMENT_EVENT,
    INFNO_SETTLEMENTS,
    INFNO_SYNC_STATUS,
    INFNO_TRANSFER_RESULT,
)
from adapters.tax.soap import OP_ENROLL, OP_FEEDBACK, OP_STOP
from config.settings import load_settings
from contracts import finance, transfer
from contracts import institution_recon as recon
from contracts.serious_illness import INFNO_SETTLEMENT as INFNO_SERIOUS_SETTLEMENT
from contracts.taxcat import OPS
from contracts.transactions import DOC_PATH, TRANSACTIONS, render_markdown
from contracts.voucher import INFNO_MEDTAX, KIOSK_BUSINESS, QUERIES, SETTLE_INFNO
from contracts.voucher import INFNO_UPLOAD as VOUCHER_UPLOAD
from routes.lanes import ROUTES

REPO = Path(__file__).resolve().parents[3]


def test_markdown_is_current() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == render_markdown(), (
        "contracts/TRANSACTIONS.md is stale: run .venv/bin/python -m contracts.transactions")


def test_every_route_binding_is_in_the_table() -> None:
    for route in ROUTES:
        for binding in route.bindings:
            assert any(t.type == binding and t.route == route.name and t.partner == route.partner
                       for t in TRANSACTIONS), f"{route.name} binds {binding}: not in the table"


def test_rows_name_real_routes_and_their_bindings() -> None:
    lanes = {r.name: r for r in ROUTES}
    for t in TRANSACTIONS:
        assert t.route in (*lanes, "ingress", "admin", "api", "poller", "inline"), t
        if t.route in lanes:
            assert t.type in lanes[t.route].bindings, t
            assert t.partner == lanes[t.route].partner, t


def test_rows_are_unique() -> None:
    legs = [(t.type, t.partner, t.direction, t.operation) for t in TRANSACTIONS]
    assert len(legs) == len(set(legs))


def test_wire_operations_are_the_adapters() -> None:
    ops = {o.name for o in OPS} | {o.core_infno for o in OPS if o.core_infno}
    assert {t.operation for t in TRANSACTIONS} == ops | {
        INFNO_SYNC_STATUS, INFNO_EMPLOYEE_QUERY, "H1103", "H1105", "H1106", "H2502", "H2501",
        "H3101", "H1107", "POST /warnings/{department}",
        "H4001", "POST /partners/departments/{dept}/lists", "POST <endpoint>/recipients",
        "POST <endpoint>/status", "POST /partners/assistance/queries/person",
        "FTP RETR", OP_FEEDBACK, "POST /channels/{channel}/applications", "POST callback_url",
        "PUT /partners/union/standards/{year}", "POST /partners/union/cases",
        "POST /partners/union/cases/{case_no}/final", "POST /union/notices",
        # F7 医疗救助平台 and 阳光惠民
        INFNO_EXPENSES, INFNO_SETTLEMENTS, INFNO_INSTITUTIONS, INFNO_SETTLEMENT_EVENT,
        "POST /partners/assistance/queries/expenses", "POST <endpoint>/settlements",
        "POST <endpoint>/settlement-data", "POST <endpoint>/fees",
        "POST <endpoint>/institutions",
        # F9 转移接续
        transfer.INFNO_PULL, transfer.INFNO_STATUS, INFNO_TRANSFER_RESULT,
        # F10 退费
        finance.INFNO_APPROVED, finance.INFNO_WITHDRAW, finance.INFNO_CORRECTED,
        finance.INFNO_STATUS, "POST <endpoint>/refund/orders",
        "POST <endpoint>/refund/orders/{no}/withdraw", "POST <endpoint>/refund/closures",
        "POST <endpoint>/refund/payments/query", "POST /partners/erp_finance/callback",
        "POST /channels/online_hall/refunds/payments",
        # F11 线上购药
        INFNO_DRUG_ELIGIBILITY, INFNO_DRUG_CATALOGUE, "hospRxDetlQuery",
        "POST /partners/drugs/orders", "POST /partners/pharmacy/events",
        "POST /partners/pharmacy/stock", "GET <endpoint>/stock", "GET <endpoint>/reconciliation",
        "POST <endpoint>/orders", "POST <endpoint>/refunds", "POST <endpoint>/records",
        # F13 电子凭证, query channels, 医税平台
        "POST /voucher/decode", "1101", "POST /voucher/settlements", *SETTLE_INFNO.values(),
        "POST /kiosk/business/{name}/{ref}", *KIOSK_BUSINESS.values(),
        "POST /kiosk/query/{name}", "POST /wechat/query/{name}",
        *(q for q in QUERIES.values() if q != "1101"), "POST /voucher/persons",
        VOUCHER_UPLOAD, "POST /voucher/medtax", INFNO_MEDTAX,
        # F14 对账 and 单边帐
        recon.INFNO_TOTALS, recon.INFNO_DETAIL, recon.INFNO_UPLOAD, recon.INFNO_DOWNLOAD,
        recon.INFNO_REVERSE, recon.INFNO_COMPLETE, recon.INFNO_NOTICE,
        # F15 大病保险
        INFNO_SERIOUS_SETTLEMENT, "POST <endpoint>/shares", "POST <endpoint>/financing",
        "POST <endpoint>/clues", "POST <endpoint>/batches/{kind}/{period}",
        "GET <endpoint>/batches/{kind}/{period}", "POST /partners/insurer/payments"}
    assert {OP_ENROLL, OP_STOP, INFNO_ENROLL} <= ops
    core_events = {t.operation: t.type for t in TRANSACTIONS
                   if t.partner == "core" and t.direction == "in"}
    assert CORE_EVENT_TYPES.items() <= core_events.items()


def test_retry_policies_are_the_keys_the_runtime_resolves() -> None:
    settings = load_settings(env={}, settings_file=str(REPO / "config" / "hub.toml"))
    lanes = {r.name for r in ROUTES}
    for t in TRANSACTIONS:
        if t.route in lanes:
            if t.partner.startswith("channel."):  # a channel: its own result-push policy
                assert t.policy == "channel" and t.partner.removeprefix("channel.") in \
                    settings.channels, t
                continue
            if t.partner not in settings.partners:  # e.g. tax_ftp: the default policy
                assert t.policy == "default", t
                continue
            policies = settings.partners[t.partner].policies
            assert t.policy == (t.type if t.type in policies else "default"), t
        else:
            assert t.policy is None, t
