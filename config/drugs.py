"""F11 线上购药 settings: ``[drugs]`` in ``config/hub.toml``.

The partners are ``[partners.drug_mall]`` (the online mall: its secret signs its calls to
the hub), ``[partners.pharmacy_erp]`` (the pharmacy ERP: the hub's orders and questions go
to its endpoint, its events come signed with its secret) and ``[partners.supervision]``
(the 医保监管平台); the prescription center is ``[partners.prescription]``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DrugSettings"]


class DrugSettings(BaseModel):
    """The sale gate's limit, the automatic receipt, the clock's checker."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default_limit: int = Field(default=10, ge=1, le=9999, description="单次购药量 (3310): "
                               "packages of one drug in one order, where core's catalogue "
                               "sets no limit for the drug")
    auto_receive_days: int = Field(default=7, ge=0, le=60, description="确认收货 (3084): "
                                   "days after 发货 the hub confirms receipt for the buyer")
    check_s: float = Field(default=300.0, gt=0, le=86400, description="how often the hub "
                           "confirms due receipts, runs yesterday's 对账 and refreshes the "
                           "catalogue")
    catalogue_s: float = Field(default=3600.0, gt=0, le=7 * 86400, description="how old the "
                               "处方药 flags synced from core may get before the next pull")
    reconcile: bool = Field(default=True, description="run each pharmacy's 对账 of "
                            "yesterday on the clock (also on demand at the admin door)")
