"""``main.py simulate``: every partner simulator on its configured port, until Ctrl-C."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from adapters.core.simulator import create_app as core_app
from adapters.tax.simulator import create_app as tax_app
from config.settings import HubSettings
from tools.serving import serve_app

__all__ = ["run_simulators"]


async def run_simulators(settings: HubSettings) -> None:
    host = "0.0.0.0" if settings.http_host == "0.0.0.0" else "127.0.0.1"
    async with AsyncExitStack() as stack:
        core = await stack.enter_async_context(
            serve_app(core_app(), host=host, port=settings.sim_core_port))
        tax = await stack.enter_async_context(serve_app(
            tax_app(callback_url=f"{settings.callback_base}/partners/tax/callback"),
            host=host, port=settings.sim_tax_port))
        print(f"simulators: core {core}/fsi/api/hub  tax {tax}/tax/ws?wsdl  (Ctrl-C stops)")
        await asyncio.Event().wait()
