"""Recording fakes of the ports the services take: publisher, journal, audit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contracts.envelope import HubMessage
from storage.journal import LogEntry, TxnUpdate


@dataclass
class Published:
    """A publisher that keeps what it was given, or fails like a broker that is gone."""

    sent: list[HubMessage] = field(default_factory=list)
    error: Exception | None = None

    async def publish(self, msg: HubMessage) -> None:
        if self.error:
            raise self.error
        self.sent.append(msg)


@dataclass
class Journaled:
    """A journal that keeps its log entries and transaction updates apart."""

    log: list[LogEntry] = field(default_factory=list)
    txns: list[TxnUpdate] = field(default_factory=list)
    error: Exception | None = None

    async def write(self, *items: LogEntry | TxnUpdate) -> None:
        if self.error:
            raise self.error
        for item in items:
            (self.log if isinstance(item, LogEntry) else self.txns).append(item)


@dataclass
class Audited:
    rows: list[tuple[str, str, str, str, dict[str, Any], str]] = field(default_factory=list)

    async def record(self, actor: str, role: str, action: str, target: str,
                     detail: dict[str, Any], outcome: str) -> int:
        self.rows.append((actor, role, action, target, detail, outcome))
        return len(self.rows)
