"""Every lane the hub runs, in one tuple: the composition root (``bootstrap``) consumes it.

    tax.<subject>    F2 submits               routes.tax_submit
    core.tax_push    F3 pushes to core        routes.core_push
    tax.compare      F3 比对 batches           routes.compare
    tax.feedback     tax's answers            routes.tax_results
    core.sync        results to core          routes.tax_results
    channel.intake   F1 applications          routes.channels
    channel.<name>   F1 results to a channel  routes.channels
    assistance.push, core.difficulty, difficulty.<dept>  F7 困难人员  routes.difficulty
    assistance.settlements  F7 结算费用同步 to the 医疗救助平台  routes.assistance
    warnings.<dept>  F8 warnings to a department routes.warnings
    union.notify     F12 notices to the union  routes.union
    transfer.intake, transfer.platform, core.transfer  F9 转移接续  routes.transfer
    pharmacy.orders, supervision.push  F11 线上购药  routes.drugs
    refund.arrival, refund.finance, refund.closure, refund.core  F10 退费  routes.refunds
    institution.resolve  F14 单边帐 resolutions at the institutions  routes.institution_recon
    core.voucher, voucher.library, voucher.medtax  F13 电子凭证  routes.voucher
    insurer.shares, insurer.financing, insurer.clues  F15 大病保险  routes.serious_illness
"""

from __future__ import annotations

from typing import Final

from kernel.runtime import Route
from routes.assistance import SETTLEMENT_ROUTE
from routes.channels import CHANNEL_ROUTES
from routes.compare import COMPARE_ROUTE
from routes.core_push import PUSH_ROUTE
from routes.difficulty import DIFFICULTY_ROUTES
from routes.drugs import DRUG_ROUTES
from routes.institution_recon import RESOLVE_ROUTE
from routes.refunds import REFUND_ROUTES
from routes.serious_illness import SERIOUS_ILLNESS_ROUTES
from routes.tax_results import RESULT_ROUTES
from routes.tax_submit import SUBMIT_ROUTES
from routes.transfer import TRANSFER_ROUTES
from routes.union import UNION_ROUTE
from routes.voucher import VOUCHER_ROUTES
from routes.warnings import WARNING_ROUTES

__all__ = ["ROUTES"]

ROUTES: Final[tuple[Route, ...]] = (*SUBMIT_ROUTES, PUSH_ROUTE, COMPARE_ROUTE, *RESULT_ROUTES,
                                    *CHANNEL_ROUTES, *WARNING_ROUTES, UNION_ROUTE,
                                    *DIFFICULTY_ROUTES, *DRUG_ROUTES, SETTLEMENT_ROUTE,
                                    *TRANSFER_ROUTES, *REFUND_ROUTES, RESOLVE_ROUTE,
                                    *VOUCHER_ROUTES, *SERIOUS_ILLNESS_ROUTES)
