"""Retry policy as data, and the pure functions that read it.

Three stages, cheapest first: a few in-process attempts (tenacity, jittered,
for network blips), then broker-delayed attempts in wait-queue tiers, then
the dead-letter queue once ``max_attempts`` or ``max_age_s`` is reached.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["RetryPolicy", "delay_for", "exhausted", "tier_for"]


class RetryPolicy(BaseModel):
    """How one message type is retried. Attempts count deliveries to the partner."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(default=8, ge=1, le=100)
    max_age_s: int = Field(default=86400, ge=1)
    inprocess_attempts: int = Field(default=2, ge=1, le=10)
    inprocess_min_s: float = Field(default=0.05, ge=0)
    inprocess_max_s: float = Field(default=0.5, ge=0)
    delays_ms: tuple[int, ...] = (1_000, 5_000, 30_000, 120_000, 600_000)

    @field_validator("delays_ms")
    @classmethod
    def _nonempty(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(d <= 0 for d in v):
            raise ValueError("needs at least one positive delay")
        return v


def delay_for(attempt: int, policy: RetryPolicy) -> int:
    """Delay in ms before broker attempt ``attempt + 1`` (attempt counts from 1)."""
    return policy.delays_ms[min(max(attempt, 1), len(policy.delays_ms)) - 1]


def tier_for(delay_ms: int, tiers: Sequence[int]) -> int:
    """The smallest declared wait-queue tier at least ``delay_ms`` (or the largest)."""
    for t in tiers:
        if t >= delay_ms:
            return t
    return tiers[-1]


def exhausted(attempt: int, age_s: float, policy: RetryPolicy) -> bool:
    return attempt >= policy.max_attempts or age_s >= policy.max_age_s
