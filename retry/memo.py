"""A small time-bounded memo for partner reference data (e.g. which communities tax knows).

Why: some answers change rarely but are asked for on every message (the F1
intake checks the 基层医保区划 of every application at tax). Remembering a
*positive* answer for a few minutes saves a partner round trip per message;
negative answers are not remembered, so a community tax has just added is
accepted at once. Per process, bounded, no I/O.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

__all__ = ["TtlMemo"]


class TtlMemo:
    """``get``/``put`` with a time-to-live and a size bound (oldest entries go first)."""

    def __init__(self, ttl_s: float = 300.0, max_items: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s, self.max_items, self._clock = ttl_s, max_items, clock
        self._items: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    def get(self, key: str) -> Any | None:
        hit = self._items.get(key)
        if hit is None:
            return None
        expires, value = hit
        if self._clock() >= expires:
            del self._items[key]
            return None
        return value

    def put(self, key: str, value: Any) -> None:
        self._items[key] = (self._clock() + self.ttl_s, value)
        self._items.move_to_end(key)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)
