"""What each lane's handlers use, as narrow protocols: a handler declares only these.

The composition root (``bootstrap.deps.Deps``) is one object that satisfies
every protocol here and ``kernel.deps.KernelDeps``; mypy checks that in
``bootstrap.deps``. A unit test passes any object with the few attributes a
handler declares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from adapters.channels.port import ChannelPort
from adapters.core.port import CorePort
from adapters.tax.port import TaxPort
from contracts.channels import CollectionPeriods
from retry.memo import TtlMemo
from storage.confirmations import NewCase
from storage.journal import RequestRecord

__all__ = ["Applications", "BatchFiles", "ChannelPushDeps", "ChannelRuleSettings",
           "CompareDeps", "FeedbackDeps", "IdentityCases", "IntakeDeps", "PushDeps",
           "RequestLookup", "SyncDeps", "TaxSubmitDeps"]


class Applications(Protocol):
    """The part of the application store the lanes use (``storage.applications``)."""

    async def get(self, app_id: str) -> dict[str, Any] | None: ...

    async def set_status(self, app_id: str, status: str, *, reason_field: str | None = None,
                         reason: str | None = None, core_ref: str | None = None,
                         parts: dict[str, Any] | None = None,
                         only_if_not_final: bool = True) -> bool: ...

    async def set_parts(self, app_id: str, parts: dict[str, Any]) -> None: ...

    async def record_part(self, app_id: str, correlation_id: str,
                          result: dict[str, Any]) -> int: ...

    async def part_results(self, app_id: str) -> dict[str, dict[str, str]]: ...

    async def claim_final(self, app_id: str, by: str) -> bool: ...


class RequestLookup(Protocol):
    """The journal's partner requests: which submit a feedback's serial answers."""

    async def request(self, serial: str, *, wait_s: float = 0.0) -> RequestRecord | None: ...


class BatchFiles(Protocol):
    """Where tax keeps batch files (its FTP server: ``FtpReturnFileSource.fetch_path``)."""

    async def fetch_path(self, path: str, dest: Path) -> tuple[str, int]: ...


class IdentityCases(Protocol):
    """Identity-confirmation cases (``storage.confirmations``): terminations tax held
    with TX402, used by ``routes.confirmations``."""

    async def open(self, case: NewCase) -> tuple[dict[str, Any], bool]: ...

    async def get(self, case_id: str) -> dict[str, Any] | None: ...

    async def move(self, case_id: str, *, expect: tuple[str, ...], status: str,
                   reason_code: str | None = None, reason: str | None = None,
                   phone: str | None = None, attempts: int | None = None,
                   actor: str | None = None, expect_attempts: int | None = None) -> bool: ...


class TaxSubmitDeps(Protocol):
    """``routes.tax_submit``: F2 submits; core and the identity cases for a termination tax
    holds as not unique (``routes.confirmations``)."""

    @property
    def tax(self) -> TaxPort: ...
    @property
    def core(self) -> CorePort: ...
    @property
    def confirmations(self) -> IdentityCases | None: ...


class FeedbackDeps(Protocol):
    """``routes.tax_results.feedback_to_core``; the identity cases for the feedback of an
    identity confirmation and of a re-driven termination (``routes.confirmations``)."""

    @property
    def journal(self) -> RequestLookup: ...
    @property
    def confirmations(self) -> IdentityCases | None: ...


class SyncDeps(Protocol):
    """``routes.tax_results.sync_to_core``: core, and the channel applications if any."""

    @property
    def core(self) -> CorePort: ...
    @property
    def applications(self) -> Applications | None: ...


class PushDeps(Protocol):
    """``routes.core_push``: F3 pushes to core."""

    @property
    def core(self) -> CorePort: ...


class CompareDeps(Protocol):
    """``routes.compare``: 比对 batches."""

    @property
    def core(self) -> CorePort: ...
    @property
    def tax_files(self) -> BatchFiles | None: ...
    @property
    def spool_dir(self) -> Path: ...


class ChannelRuleSettings(Protocol):
    """The settings the F1 rules read (``config.settings.HubSettings`` has them)."""

    @property
    def resident_collection(self) -> CollectionPeriods: ...


class IntakeDeps(Protocol):
    """``routes.channels.intake``: tax's facts, core's registration, the application."""

    @property
    def settings(self) -> ChannelRuleSettings: ...

    @property
    def tax(self) -> TaxPort: ...
    @property
    def core(self) -> CorePort: ...
    @property
    def applications(self) -> Applications | None: ...
    @property
    def memo(self) -> TtlMemo: ...


class ChannelPushDeps(Protocol):
    """``routes.channels.push_result``: the application and the channel's callback."""

    @property
    def applications(self) -> Applications | None: ...
    @property
    def channels(self) -> ChannelPort | None: ...
