"""F13 电子凭证 and query channels: ``[voucher]`` in ``config/hub.toml``.

The partners themselves are ``partners.core_voucher`` (core's 结算/人员信息/查询 services),
``partners.voucher_library`` (省级凭证库), ``partners.medtax`` (医税平台) and
``partners.medins`` (the institutions' HIS, its secret signs their calls). This section
holds the issuing platform's SM2 public key (every voucher must verify with it), the
kiosks' and WeChat accounts' keys (``HUB_VOUCHER__KIOSK_DEVICES__<ID>`` ...), the rate
limits and the simulator's port. Left empty, a development hub reads the platform key
from ``dev_keys_file`` (written by ``main.py simulate``'s issuing platform or the harness);
any other hub refuses every voucher until the key is set.
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = ["DEV_KIOSKS", "DEV_WECHAT", "VoucherSettings"]


DEV_KIOSKS: Final = {"ICBC-KIOSK-0001": "dev-kiosk-secret"}
"""The test harness's and the demo's kiosk device (never a default of a real hub)."""
DEV_WECHAT: Final = {"wx-njyb-query": "dev-wechat-secret"}


class VoucherSettings(BaseModel):
    """Keys, callers and limits of F13."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    platform_public_key: str = Field(
        default="", description="the voucher issuing platform's SM2 public key, 04||X||Y hex "
        "(HUB_VOUCHER__PLATFORM_PUBLIC_KEY)")
    dev_keys_file: str = Field(default=".run/dev-keys/voucher.json",
                               description="development mode only: the simulated platform's "
                               "key pair, shared by the hub and main.py simulate")
    skew_s: int = Field(default=30, ge=0, le=600,
                        description="clock difference tolerated on a voucher's times")
    full_view_partners: tuple[str, ...] = Field(
        default=(), description="partners whose /voucher/decode answer shows the full ID "
        "number and name (an institution's HIS registering the patient); others see masks")
    kiosk_devices: dict[str, SecretStr] = Field(
        default_factory=dict, description="工行一体机 device id -> HMAC key it signs with "
        "(none: the kiosk doors refuse every call; the harness sets DEV_KIOSKS)")
    wechat_accounts: dict[str, SecretStr] = Field(
        default_factory=dict, description="WeChat query platform account -> HMAC key it "
        "signs with (none: the WeChat door refuses every call; the harness sets DEV_WECHAT)")
    kiosk_per_minute: int = Field(default=30, ge=1, le=100_000,
                                  description="calls one kiosk device may make per minute")
    wechat_per_minute: int = Field(default=60, ge=1, le=100_000,
                                   description="calls one WeChat account may make per minute")
    sim_port: int = Field(default=8140, ge=1, le=65535,
                          description="main.py simulate: the F13 simulators' port")

    @field_validator("kiosk_devices", "wechat_accounts")
    @classmethod
    def _ids(cls, v: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name in v:
            if not (4 <= len(name) <= 40 and all(c.isalnum() or c in "-_" for c in name)):
                raise ValueError(f"{name!r}: a caller id is 4-40 of A-Z a-z 0-9 - _")
        return v
