"""``main.py simulate``: every partner simulator on its configured port, until Ctrl-C.

The simulators sign their calls to the hub with the hub's configured partner and
channel secrets (the same settings: development defaults unless set).
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path
from urllib.parse import urlsplit

from config.settings import HubSettings, development_partner_secrets
from contracts.difficulty import ASSISTANCE, DEPARTMENTS, SUNSHINE, partner_of
from contracts.drugs import PHARMACY, SUPERVISION
from contracts.finance import PARTNER as FINANCE
from simulators.assistance import create_app as assistance_app
from simulators.channels import create_app as channels_app
from simulators.core import create_app as core_app
from simulators.departments import DepartmentInbox
from simulators.departments import create_app as departments_app
from simulators.drugs import PHARMACIES, PRICES
from simulators.finance import FinanceSim
from simulators.finance import create_app as finance_app
from simulators.institutions import serve_reconciliation_at
from simulators.insurer import InsurerBook, InsurerSim
from simulators.insurer import create_app as insurer_app
from simulators.pharmacy import ErpBook
from simulators.pharmacy import create_app as erp_app
from simulators.prescription import serve_center
from simulators.serving import serve_app
from simulators.simkit import SimState
from simulators.supervision import create_app as supervision_app
from simulators.tax import create_app as tax_app
from simulators.tax_ftp import TaxFtpSimulator
from simulators.transfer import PATH as TRANSFER_PATH
from simulators.transfer import create_app as transfer_app
from simulators.union import create_app as union_app
from simulators.voucher import simulate_app as voucher_app
from simulators.warnings_recv import create_app as warnings_app

__all__ = ["run_simulators", "start_departments"]


async def run_simulators(settings: HubSettings) -> None:
    host = "0.0.0.0" if settings.http_host == "0.0.0.0" else "127.0.0.1"
    async with AsyncExitStack() as stack:
        core = await stack.enter_async_context(
            serve_app(core_app(), host=host, port=settings.sim_core_port))
        tax = await stack.enter_async_context(serve_app(
            tax_app(callback_url=f"{settings.callback_base}/partners/tax/callback",
                    callback_secret=settings.partners["tax"].secret.get_secret_value()),
            host=host, port=settings.sim_tax_port))
        channels = await stack.enter_async_context(serve_app(
            channels_app(settings.channels), host=host, port=settings.sim_channels_port))
        rf = settings.returnfiles
        ftp = stack.enter_context(TaxFtpSimulator(
            Path(".run/ftp"), host=host, port=rf.port, user=rf.user,
            password=rf.password.get_secret_value()))
        for i, kind in enumerate(("unit_pay", "employee_pay", "resident_pay")):
            ftp.drop_file(kind, 1000, batch_no=f"{i + 1:04d}", seed=i)
        departments = await start_departments(stack, settings, host)  # F7, F8, F12
        print(f"simulators: core {core}/fsi/api/hub  tax {tax}/tax/ws?wsdl  "
              f"tax FTP ftp://{host}:{ftp.port}{rf.root} (3 return files)  "
              f"channels {channels}/channels/<name>/callback  (Ctrl-C stops)")
        print("simulators: " + "  ".join(departments))
        platform = await stack.enter_async_context(serve_app(transfer_app(
            _secret(settings, "transfer")), host=host, port=settings.transfer.sim_port))
        print(f"simulators: F9 转移接续 {platform}{TRANSFER_PATH}")
        center = await serve_center(stack, settings, host)  # F11 电子处方中心
        print(f"simulators: F11 电子处方中心 {center}/epc/api/fixmedins/<path>" if center else
              "simulators: F11 电子处方中心 not started (prescription keys are configured)")
        finance = await start_finance_at(stack, settings, host)  # F10 用友 finance
        for line in await start_drugs_at(stack, settings, host):  # F11 线上购药
            print(f"simulators: {line}")
        print(f"simulators: F10 用友 finance {finance}/finance/refund/<path> "
              f"(pay: POST {finance}/_sim/finance/pay)")
        voucher = await stack.enter_async_context(serve_app(  # F13 电子凭证
            voucher_app(settings), host=host, port=settings.voucher.sim_port))
        print(f"simulators: F13 core/凭证库/医税平台 {voucher}/{{core,library,medtax}}/api "
              f"(a voucher: POST {voucher}/_sim/voucher/issue)")
        for line in await serve_reconciliation_at(stack, settings, host,  # F14 对账
                                                  serve=serve_app):
            print(f"simulators: {line}")
        insurer = await start_insurer_at(stack, settings, host)  # F15 大病保险
        print(f"simulators: F15 大病保险承办机构 {insurer}/insurer/<shares|clues|batches>")
        control = await start_traffic_at(stack, settings, host)  # `hub traffic ...`
        print(f"simulators: traffic control {control}/traffic (X-Sim-Token)")
        await asyncio.Event().wait()


async def start_finance_at(stack: AsyncExitStack, settings: HubSettings, host: str) -> str:
    """F10: the finance simulator on the port of ``partners.erp_finance.endpoint``, paying
    taken orders after two seconds and calling the hub back at ``callback_base``."""
    endpoint = settings.partners[FINANCE].endpoint if FINANCE in settings.partners \
        else "http://127.0.0.1:8130/finance"
    secret = _secret(settings, FINANCE)
    sim = FinanceSim(SimState(), secret=secret, callback_secret=secret, auto_pay_s=2.0,
                     callback_url=f"{settings.callback_base}/partners/{FINANCE}/callback")
    return str(await stack.enter_async_context(serve_app(
        finance_app(sim), host=host, port=urlsplit(endpoint).port or 8130)))


async def start_insurer_at(stack: AsyncExitStack, settings: HubSettings, host: str) -> str:
    """F15: the 大病保险承办机构 on the port of ``partners.insurer.endpoint`` (8150)."""
    endpoint = settings.partners["insurer"].endpoint if "insurer" in settings.partners \
        else "http://127.0.0.1:8150/insurer"
    sim = InsurerSim(SimState(), InsurerBook(), secret=_secret(settings, "insurer"))
    return str(await stack.enter_async_context(serve_app(
        insurer_app(sim), host=host, port=urlsplit(endpoint).port or 8150)))


async def start_drugs_at(stack: AsyncExitStack, settings: HubSettings,
                         host: str) -> list[str]:
    """F11: the pharmacy ERP (stock seeded for the sample pharmacies, 接单 and 退款 told to
    the hub at ``callback_base``) and the 医保监管平台, on the ports of
    ``partners.pharmacy_erp`` and ``partners.supervision``."""
    erp_end = settings.partners[PHARMACY].endpoint if PHARMACY in settings.partners \
        else "http://127.0.0.1:8122/erp"
    sup_end = settings.partners[SUPERVISION].endpoint if SUPERVISION in settings.partners \
        else "http://127.0.0.1:8123/supervision"
    book = ErpBook(hub_url=settings.callback_base, secret=_secret(settings, PHARMACY))
    for pharmacy in PHARMACIES:
        book.seed(pharmacy, dict.fromkeys(PRICES, 100))
    erp = await stack.enter_async_context(serve_app(erp_app(
        _secret(settings, PHARMACY), book=book), host=host, port=urlsplit(erp_end).port or 8122))
    sup = await stack.enter_async_context(serve_app(supervision_app(
        _secret(settings, SUPERVISION)), host=host, port=urlsplit(sup_end).port or 8123))
    return [f"F11 药房ERP {erp}/erp/<orders|refunds|stock|reconciliation>",
            f"F11 医保监管平台 {sup}/supervision/records"]


async def start_traffic_at(stack: AsyncExitStack, settings: HubSettings, host: str) -> str:
    """The traffic door (``simulators.traffic``) on ``sim_control_port``: core, channels, tax
    and departments send on request, fault switches by name (``hub traffic``)."""
    from simulators.traffic import create_app as traffic_app
    from simulators.traffic import targets_from_settings

    return str(await stack.enter_async_context(serve_app(
        traffic_app(targets_from_settings(settings, host=host)), host=host,
        port=settings.sim_control_port)))


def _secret(settings: HubSettings, partner: str) -> str:
    """The partner's secret as the hub has it; its development secret when the hub has none
    (``make simulate`` is a development tool: the development hub fills in the same)."""
    cfg = settings.partners.get(partner)
    configured = cfg.secret.get_secret_value() if cfg is not None else ""
    return configured or development_partner_secrets()[partner].get_secret_value()


async def start_departments(stack: AsyncExitStack, settings: HubSettings,
                            host: str) -> list[str]:
    """The F7, F8 and F12 simulators on their ports (``sim_departments_port``,
    ``sim_assistance_port``, ``sim_warnings_port``, ``sim_union_port``; the development
    endpoints of ``config/hub.toml``); what each serves, one line each. The departments
    pick up their status files from their drop folders (``difficulty_files.drops``)
    every few seconds."""
    dept_state, inbox = SimState(), DepartmentInbox()
    secrets = {d: _secret(settings, partner_of(d)) for d in DEPARTMENTS}
    depts = await stack.enter_async_context(serve_app(
        departments_app(secrets, dept_state, inbox), host=host,
        port=settings.sim_departments_port))
    platform = await stack.enter_async_context(serve_app(assistance_app(
        _secret(settings, ASSISTANCE), sunshine_secret=_secret(settings, SUNSHINE)),
        host=host, port=settings.sim_assistance_port))
    warn = await stack.enter_async_context(serve_app(
        warnings_app(settings.warnings.departments), host=host,
        port=settings.sim_warnings_port))
    union = await stack.enter_async_context(serve_app(
        union_app(_secret(settings, "trade_union")), host=host, port=settings.sim_union_port))
    drops = {d: Path(f) for d, f in settings.difficulty_files.drops.items() if d in DEPARTMENTS}

    async def collect() -> None:
        while True:
            for d, folder in drops.items():
                await asyncio.to_thread(inbox.collect_files, d, folder, dept_state)
            await asyncio.sleep(2.0)

    if drops:
        task = asyncio.create_task(collect())
        stack.callback(task.cancel)
    return [f"F7 departments {depts}/departments/<dept>/status",
            f"F7 医疗救助平台 {platform}/assistance/recipients",
            f"F7 阳光惠民 {platform}/sunshine/recipients",
            f"F8 warnings {warn}/warnings/<department>",
            f"F12 union {union}/union/notices"]
