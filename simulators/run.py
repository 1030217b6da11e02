"""``main.py simulate``: every partner simulator on its configured port, until Ctrl-C.

The simulators sign their calls to the hub with the hub's configured partner and
channel secrets (the same settings: development defaults unless set).
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

from config.settings import HubSettings
from simulators.channels import create_app as channels_app
from simulators.core import create_app as core_app
from simulators.serving import serve_app
from simulators.tax import create_app as tax_app
from simulators.tax_ftp import TaxFtpSimulator

__all__ = ["run_simulators"]


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
        print(f"simulators: core {core}/fsi/api/hub  tax {tax}/tax/ws?wsdl  "
              f"tax FTP ftp://{host}:{ftp.port}{rf.root} (3 return files)  "
              f"channels {channels}/channels/<name>/callback  (Ctrl-C stops)")
        await asyncio.Event().wait()
