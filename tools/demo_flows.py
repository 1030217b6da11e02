"""The lines ``make demo`` ends with: one per flow of ``../shared/spec/partners.md``.

    F2 税务同步: sent=237 delivered=210 rejected=25 dead=2 duplicates=0
    F7 困难人员: not built

Every count is taken at the partner simulators (what the originator sent and
was told, what the receiving partner shows), never from the hub's journal.
``sent`` = ``delivered`` + ``rejected`` + ``dead`` on every line: what no
partner accounts for counts as dead. ``duplicates`` are duplicate side effects
at the receiving partner. Flows the demo does not exercise (not built yet)
say so instead of showing zeros.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["FLOW_NAMES", "Flow", "FlowBook", "Outcome", "extra_effects", "http_outcome",
           "wait_for"]

FLOW_NAMES: Final[dict[int, str]] = {
    1: "渠道申请", 2: "税务同步", 3: "税务推送", 4: "查询", 5: "回盘文件", 6: "补发",
    7: "困难人员", 8: "高额费用预警", 9: "转移接续", 10: "退费", 11: "线上购药",
    12: "工会互助", 13: "电子凭证", 14: "对账", 15: "大病保险",
}
"""F1-F15, numbered as in partners.md, with short names."""

Outcome = Literal["delivered", "rejected", "dead"]


@dataclass(frozen=True)
class Flow:
    """One flow's counts; ``failed`` is what a partner shows as given up (dead)."""

    sent: int = 0
    delivered: int = 0
    rejected: int = 0
    failed: int = 0
    duplicates: int = 0

    @classmethod
    def of(cls, outcomes: list[Outcome], duplicates: int = 0) -> Flow:
        """A flow from one outcome per message sent."""
        return cls(sent=len(outcomes), delivered=outcomes.count("delivered"),
                   rejected=outcomes.count("rejected"), failed=outcomes.count("dead"),
                   duplicates=duplicates)

    def __add__(self, other: Flow) -> Flow:
        return Flow(self.sent + other.sent, self.delivered + other.delivered,
                    self.rejected + other.rejected, self.failed + other.failed,
                    self.duplicates + other.duplicates)

    @property
    def dead(self) -> int:
        """Given up, plus whatever no partner accounts for."""
        return max(self.failed, self.sent - self.delivered - self.rejected)

    @property
    def balanced(self) -> bool:
        """sent = delivered + rejected + dead (false when partners show more than was sent)."""
        return self.sent == self.delivered + self.rejected + self.dead

    def line(self, number: int) -> str:
        return (f"F{number} {FLOW_NAMES[number]}: sent={self.sent} delivered={self.delivered} "
                f"rejected={self.rejected} dead={self.dead} duplicates={self.duplicates}")


class FlowBook:
    """The flows a demo exercised, added up part by part."""

    def __init__(self) -> None:
        self.flows: dict[int, Flow] = {}

    def add(self, number: int, flow: Flow) -> None:
        if number not in FLOW_NAMES:
            raise ValueError(f"no flow F{number}")
        self.flows[number] = self.flows.get(number, Flow()) + flow

    def lines(self) -> list[str]:
        """One line per flow, F1-F15; ``not built`` for a flow the demo did not exercise."""
        return [self.flows[n].line(n) if n in self.flows else f"F{n} {name}: not built"
                for n, name in FLOW_NAMES.items()]

    def problems(self) -> list[str]:
        """Flows with duplicate side effects, or whose counts do not add up."""
        out = []
        for n, f in sorted(self.flows.items()):
            if f.duplicates:
                out.append(f"F{n}: {f.duplicates} duplicate side effects at the partner")
            if not f.balanced:
                out.append(f"F{n}: partners show {f.delivered + f.rejected + f.failed} outcomes "
                           f"for {f.sent} sent")
        return out


def extra_effects(effects: Mapping[str, int]) -> int:
    """Duplicate side effects among effects per key: each key's effects beyond its first."""
    return sum(n - 1 for n in effects.values() if n > 1)


def http_outcome(status_code: int | None) -> Outcome:
    """A synchronous answer: 2xx delivered, 4xx rejected, 5xx or none (timeout) dead."""
    if status_code is not None and 200 <= status_code < 300:
        return "delivered"
    if status_code is not None and 400 <= status_code < 500:
        return "rejected"
    return "dead"


async def wait_for(done: Callable[[], bool], timeout: float, poll_s: float = 0.1) -> bool:
    """Poll ``done`` until it holds or ``timeout`` passes; whether it held."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not done():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(poll_s)
    return True
