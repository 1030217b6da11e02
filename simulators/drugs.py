"""F11's simulators on real sockets for the harness: the pharmacy ERP and the 医保监管平台
(the online mall is the caller: tests and the demo sign as ``drug_mall``; the
prescription center is ``simulators.prescription``'s).

``start_drugs`` serves both in the harness's exit stack, seeds the ERP's stock for two
pharmacies, and gives back the hub's settings pointed at them (``partners.pharmacy_erp``,
``partners.supervision``, ``partners.drug_mall``), with development secrets where none is
configured; handles in ``sims["drugs"]``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
from pydantic import SecretStr

from adapters.signing import SignedAuth
from config.settings import HubSettings, PartnerConfig
from contracts.drugs import MALL, PHARMACY, SUPERVISION
from simulators.pharmacy import SAMPLE_DRUGS, ErpBook
from simulators.pharmacy import create_app as erp_app
from simulators.serving import serve_app
from simulators.simkit import SimState
from simulators.supervision import SupervisionBook
from simulators.supervision import create_app as supervision_app

__all__ = ["PHARMACIES", "DrugSims", "order_body", "paid_body", "start_drugs", "sync_hub"]

PHARMACIES: tuple[str, str] = ("P32010200001", "P32010600002")
"""Two 定点药店 of the simulated ERP (鼓楼, 建邺)."""
PRICES: dict[str, Decimal] = {d["med_list_codg"]: Decimal(p) for d, p in zip(
    SAMPLE_DRUGS, ("12.50", "6.80", "35.20", "18.00", "22.40", "9.90", "15.30", "8.60"),
    strict=True)}
NAMES: dict[str, str] = {d["med_list_codg"]: d["med_list_name"] for d in SAMPLE_DRUGS}


@dataclass
class DrugSims:
    erp_state: SimState
    erp: ErpBook
    sup_state: SimState
    supervision: SupervisionBook
    secrets: dict[str, str] = field(default_factory=dict)

    def auth(self, partner: str = MALL) -> SignedAuth:
        """``httpx`` ``auth=`` signing as the mall (default) or the ERP."""
        return SignedAuth(partner, self.secrets[partner])


def order_body(order_no: str, id_number: str, name: str, lines: Mapping[str, int], *,
               pharmacy: str = PHARMACIES[0], hi_rxno: str = "",
               delivery: str = "ship") -> dict[str, Any]:
    """What the mall posts for an order of ``lines`` (drug code -> packages) at the
    simulated prices; the total adds up to the fen."""
    items = [{"drug_code": c, "name": NAMES[c], "quantity": q,
              "unit_price": str(PRICES[c])} for c, q in lines.items()]
    total = sum((PRICES[c] * q for c, q in lines.items()), Decimal("0.00"))
    body: dict[str, Any] = {"order_no": order_no, "pharmacy_code": pharmacy,
                            "id_number": id_number, "name": name, "items": items,
                            "total": f"{total:.2f}", "delivery": delivery,
                            "address": "南京市鼓楼区中山路1号" if delivery == "ship" else ""}
    if hi_rxno:
        body["prescription"] = {"hi_rxno": hi_rxno}
    return body


def paid_body(total: str, pay_no: str) -> dict[str, Any]:
    """A payment of ``total``: 70% 统筹, the rest 个人账户 (fen-exact)."""
    t = Decimal(total)
    fund = (t * Decimal("0.7")).quantize(Decimal("0.01"))
    return {"pay_no": pay_no, "total": total, "fund_pay": str(fund),
            "acct_pay": str(t - fund), "self_pay": "0.00"}


def _partner(partners: Mapping[str, PartnerConfig], name: str, endpoint: str) -> PartnerConfig:
    base = partners.get(name) or PartnerConfig(protocol="rest", endpoint=endpoint)
    secret = base.secret if base.secret.get_secret_value() else SecretStr(f"dev-{name}-secret")
    return base.model_copy(update={"endpoint": endpoint, "secret": secret})


async def start_drugs(stack: contextlib.AsyncExitStack, s: HubSettings,
                      sims: dict[str, Any]) -> HubSettings:
    partners = dict(s.partners)
    erp_cfg = _partner(partners, PHARMACY, "http://x")
    sup_cfg = _partner(partners, SUPERVISION, "http://x")
    mall_cfg = _partner(partners, MALL, partners[MALL].endpoint if MALL in partners
                        else "http://127.0.0.1:8121/mall")
    erp_state, book = SimState(), ErpBook(hub_url=s.callback_base,
                                          secret=erp_cfg.secret.get_secret_value())
    for i, pharmacy in enumerate(PHARMACIES):
        book.seed(pharmacy, {code: 40 - 10 * i for code in PRICES})
    erp_url = await stack.enter_async_context(serve_app(erp_app(
        erp_cfg.secret.get_secret_value(), erp_state, book)))
    sup_state, sup = SimState(), SupervisionBook()
    sup_url = await stack.enter_async_context(serve_app(supervision_app(
        sup_cfg.secret.get_secret_value(), sup_state, sup)))
    partners[PHARMACY] = erp_cfg.model_copy(update={"endpoint": f"{erp_url}/erp"})
    partners[SUPERVISION] = sup_cfg.model_copy(update={"endpoint": f"{sup_url}/supervision"})
    partners[MALL] = mall_cfg
    sims["drugs"] = DrugSims(erp_state, book, sup_state, sup, {
        name: partners[name].secret.get_secret_value() for name in (MALL, PHARMACY,
                                                                    SUPERVISION)})
    return s.model_copy(update={"partners": partners})


async def sync_hub(http: httpx.AsyncClient, hub_url: str, headers: Mapping[str, str]) -> None:
    """Pull core's catalogue and every simulated pharmacy's stock into the hub (each asked
    again a few times while the partner fails: the demo runs with core's 5xx switch on)."""
    paths = ["catalogue/sync", *(f"stock/{p}/pull" for p in PHARMACIES)]
    for path in paths:
        for attempt in range(5):
            r = await http.post(f"{hub_url}/admin/drugs/{path}", headers=dict(headers))
            if r.status_code < 500 or attempt == 4:
                break
            await asyncio.sleep(0.2)
        r.raise_for_status()
