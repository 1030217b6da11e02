from __future__ import annotations

from retry.memo import TtlMemo


def test_entries_expire_and_the_oldest_go_first() -> None:
    now = [0.0]
    memo = TtlMemo(ttl_s=10, max_items=2, clock=lambda: now[0])
    memo.put("a", 1)
    memo.put("b", 2)
    assert memo.get("a") == 1
    memo.put("c", 3)                      # over the bound: the oldest ("a") goes
    assert memo.get("a") is None and memo.get("c") == 3
    now[0] = 10.0
    assert memo.get("b") is None          # expired
