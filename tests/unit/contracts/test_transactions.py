"""The transaction table agrees with the code it describes, and TRANSACTIONS.md with the table."""

from __future__ import annotations

from pathlib import Path

from adapters.core.translate import (
    CORE_EVENT_TYPES,
    INFNO_EMPLOYEE_QUERY,
    INFNO_ENROLL,
    INFNO_SYNC_STATUS,
)
from adapters.tax.soap import OP_ENROLL, OP_FEEDBACK, OP_STOP
from config.settings import load_settings
from contracts.taxcat import OPS
from contracts.transactions import DOC_PATH, TRANSACTIONS, render_markdown
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
        "POST /partners/union/cases/{case_no}/final", "POST /union/notices"}
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
