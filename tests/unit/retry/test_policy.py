"""Retry policy as data: delays per attempt, tier rounding, exhaustion, jittered backoff.

``compute_backoff`` lives here, not in ``retry.policy``: production waits between
in-process attempts with tenacity's ``wait_random_exponential`` and between broker
attempts with ``delay_for``; the exponential-with-jitter shape is kept as the
reference these tests pin down.
"""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from retry.policy import RetryPolicy, delay_for, exhausted, tier_for

TIERS = (1_000, 5_000, 30_000, 120_000, 600_000)


def compute_backoff(attempt: int, *, base: float, factor: float = 2.0, maximum: float,
                    jitter: bool = True, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter (dramatiq's shape), in seconds."""
    raw = min(maximum, base * factor ** max(0, attempt - 1))
    return (rng or random).uniform(raw / 2, raw) if jitter else raw


def test_defaults_are_sane() -> None:
    p = RetryPolicy()
    assert p.max_attempts == 8
    assert p.max_age_s == 86400
    assert p.inprocess_attempts == 2
    assert p.delays_ms == TIERS


@pytest.mark.parametrize(("attempt", "expected"), [
    (0, 1_000),  # clamped to the first delay
    (1, 1_000),
    (2, 5_000),
    (5, 600_000),
    (6, 600_000),  # past the list: the last delay again
    (100, 600_000),
])
def test_delay_for_walks_the_list_then_stays_on_the_last(attempt: int, expected: int) -> None:
    assert delay_for(attempt, RetryPolicy()) == expected


@pytest.mark.parametrize(("delay", "expected"), [
    (1, 1_000), (1_000, 1_000), (1_001, 5_000), (29_999, 30_000), (600_000, 600_000),
    (10**9, 600_000),  # beyond the largest tier: the largest
])
def test_tier_for_rounds_up_to_a_declared_tier(delay: int, expected: int) -> None:
    assert tier_for(delay, TIERS) == expected


def test_exhausted_by_attempts_or_by_age() -> None:
    p = RetryPolicy(max_attempts=3, max_age_s=60)
    assert not exhausted(0, 0, p)
    assert not exhausted(2, 59.9, p)
    assert exhausted(3, 0, p)
    assert exhausted(4, 0, p)
    assert exhausted(1, 60, p)


def test_compute_backoff_without_jitter_is_exponential_and_capped() -> None:
    got = [compute_backoff(a, base=0.5, maximum=10, jitter=False) for a in range(0, 8)]
    assert got == [0.5, 0.5, 1.0, 2.0, 4.0, 8.0, 10, 10]
    assert compute_backoff(3, base=1, factor=3, maximum=100, jitter=False) == 9


def test_compute_backoff_with_jitter_stays_within_half_to_full() -> None:
    rng = random.Random(42)
    for attempt in range(1, 12):
        raw = min(30.0, 0.25 * 2 ** (attempt - 1))
        for _ in range(50):
            value = compute_backoff(attempt, base=0.25, maximum=30.0, rng=rng)
            assert raw / 2 <= value <= raw


def test_compute_backoff_is_reproducible_with_a_seeded_rng() -> None:
    a = [compute_backoff(n, base=1, maximum=60, rng=random.Random(7)) for n in range(1, 9)]
    b = [compute_backoff(n, base=1, maximum=60, rng=random.Random(7)) for n in range(1, 9)]
    assert a == b


@pytest.mark.parametrize("delays", [(), (1_000, 0), (-5,)])
def test_policy_needs_positive_delays(delays: tuple[int, ...]) -> None:
    with pytest.raises(ValidationError, match="positive delay"):
        RetryPolicy(delays_ms=delays)


@pytest.mark.parametrize("bad", [{"max_attempts": 0}, {"max_attempts": 101},
                                 {"inprocess_attempts": 0}, {"max_age_s": 0},
                                 {"unknown_field": 1}])
def test_policy_rejects_out_of_range_and_unknown_fields(bad: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        RetryPolicy(**bad)


def test_policy_is_frozen() -> None:
    p = RetryPolicy()
    with pytest.raises(ValidationError):
        p.max_attempts = 2  # type: ignore[misc]
