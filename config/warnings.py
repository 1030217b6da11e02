"""F8 高额费用预警 settings: the departments the lists go to and the lines of each year.

``[warnings]`` in ``config/hub.toml`` (environment ``HUB_WARNINGS__...``):

    [warnings.departments.civil_affairs]    endpoint, secret, timeout_s
    [warnings.years."2026"]                 urban_income, rural_income, urban_dibao,
                                            rural_dibao (yuan per year)
    [warnings.policy]                       how a warning to a department is retried

A year's ``*_income`` is the previous year's 城镇/农村居民人均可支配收入 (the 因病致贫
line of that year, seed 1562); ``*_dibao`` the year's 最低生活保障标准 times twelve
(the 因病返贫 line, 1567). A month of a year with no lines cannot run (the run says so).
The defaults are illustrative figures of the order of Nanjing's; set the published ones.
"""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from contracts.warnings import DEPARTMENTS, Thresholds
from retry.policy import RetryPolicy

__all__ = ["DepartmentConfig", "WarningSettings", "department_secret"]


class DepartmentConfig(BaseModel):
    """Where a department receives warning lists and the key the hub signs them with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoint: str = Field(min_length=1, description="base URL; lists go to "
                          "<endpoint>/warnings/<department>")
    secret: SecretStr = Field(default=SecretStr(""), description="HMAC key of the hub's "
                              "signature (HUB_WARNINGS__DEPARTMENTS__<NAME>__SECRET); empty: "
                              "``dev-warn-<name>-secret`` in development mode, and in "
                              "production the hub sends nothing (``department_secret``)")
    timeout_s: float = Field(default=5.0, gt=0, le=60)

    @field_validator("endpoint")
    @classmethod
    def _http(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{v!r} must be an http:// or https:// URL with a host")
        return v


def _default_departments() -> dict[str, DepartmentConfig]:
    return {name: DepartmentConfig(endpoint="http://127.0.0.1:8107") for name in DEPARTMENTS}


def department_secret(name: str, config: DepartmentConfig, *, development: bool) -> str:
    """The key a department's lists are signed with: the configured one; without one, the
    development key ``dev-warn-<name>-secret`` in development mode only, else "" (the hub
    refuses to send: a production hub never signs with a key printed here)."""
    configured = config.secret.get_secret_value()
    if configured:
        return configured
    return f"dev-warn-{name}-secret" if development else ""


def _default_years() -> dict[str, Thresholds]:
    return {
        "2025": Thresholds(urban_income=Decimal(78283), rural_income=Decimal(36079),
                           urban_dibao=Decimal(14760), rural_dibao=Decimal(14760)),
        "2026": Thresholds(urban_income=Decimal(81250), rural_income=Decimal(38100),
                           urban_dibao=Decimal(15360), rural_dibao=Decimal(15360)),
    }


class WarningSettings(BaseModel):
    """F8: departments, lines per year, retry policy of the department lanes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    departments: dict[str, DepartmentConfig] = Field(default_factory=_default_departments)
    years: dict[str, Thresholds] = Field(default_factory=_default_years)
    policy: RetryPolicy = Field(default_factory=RetryPolicy)

    @field_validator("departments")
    @classmethod
    def _known(cls, v: dict[str, DepartmentConfig]) -> dict[str, DepartmentConfig]:
        if bad := sorted(set(v) - set(DEPARTMENTS)):
            raise ValueError(f"unknown department {bad[0]!r}; one of {', '.join(DEPARTMENTS)}")
        return v

    @field_validator("years")
    @classmethod
    def _years(cls, v: dict[str, Thresholds]) -> dict[str, Thresholds]:
        if bad := [y for y in v if not (y.isdigit() and len(y) == 4)]:
            raise ValueError(f"year {bad[0]!r} is not YYYY")
        return v

    def lines(self, year: int | str) -> Thresholds | None:
        return self.years.get(str(year))
