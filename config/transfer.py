"""F9 转移接续 settings: ``[transfer]`` in ``config/hub.toml``.

The national transfer platform itself is a partner (``[partners.transfer]``: its endpoint,
timeout, retry policy, and ``secret``, from ``HUB_PARTNERS__TRANSFER__SECRET``, that the
hub signs its calls with). Without ``partners.transfer`` the hub pulls nothing (the
window and 我的南京 ways in still work; nothing goes back to the platform).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["TransferSettings"]


class TransferSettings(BaseModel):
    """How often and how much the hub pulls, and which regions are not on the platform."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pull_s: float = Field(default=300.0, gt=0, le=86400,
                          description="how often the hub's ticker pulls new applications")
    page_size: int = Field(default=100, ge=1, le=200,
                           description="applications asked for in one T2401 page")
    max_pages: int = Field(default=50, ge=1, le=10_000,
                           description="pages one pull reads at most (the next pull goes on)")
    offline_divisions: tuple[str, ...] = Field(
        default=(), description="未联网地区: division codes (6 digits; a prefix of 2 or 4 "
        "digits covers a province or a city) whose transfers are handled offline with a "
        "参保凭证 (seed 2571, 2676, 2761)")
    sim_port: int = Field(default=8110, ge=1, le=65535,
                          description="the platform simulator's port (make simulate)")
    issuer: str = Field(default="南京市医疗保障局", max_length=60,
                        description="出具机构 printed on the 参保凭证")

    @field_validator("offline_divisions")
    @classmethod
    def _codes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for code in v:
            if not (code.isdigit() and len(code) in (2, 4, 6)):
                raise ValueError(f"{code!r} is not a division code or prefix (2, 4 or 6 "
                                 "digits)")
        return v

    def is_offline(self, division: str) -> bool:
        """Whether ``division`` is a 未联网地区 (configured by code or by prefix)."""
        return any(division.startswith(code) for code in self.offline_divisions)
