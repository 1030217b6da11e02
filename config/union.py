"""F12 trade-union mutual aid (工会互助) settings: ``[union]`` in ``config/hub.toml``.

The union itself is a partner (``[partners.trade_union]``: where its notice endpoint
is, its retry policy, and ``secret``, from ``HUB_PARTNERS__TRADE_UNION__SECRET``,
which it signs its calls with and the hub signs its notices with). A hub with no
secret for it refuses every call at the union door.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["UnionSettings"]


class UnionSettings(BaseModel):
    """The case clock's checker and the union door's body limit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    check_s: float = Field(default=60.0, gt=0, le=86400,
                           description="how often the hub looks for breached case timers")
    soon_days: int = Field(default=1, ge=0, le=10,
                           description="a deadline within this many working days is 'soon'")
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024,
                                description="a case carries its scanned images (base64)")
