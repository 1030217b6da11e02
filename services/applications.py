"""Citizen-channel applications (F1): taking one in, and telling a channel where one stands.

An application the channel may submit and whose payload meets its contract is
stored as ``received``, published as ONE ``channel.application`` message
(broker-confirmed), then marked ``validated``. Nothing is lost when the broker
fails: the refusal is 503, the application stays ``received``, and the
channel's retry with the same ``request_id`` publishes it again (same
idempotency key, so the pipeline does the work once even if the first publish
did reach the broker). A repeat of a request already handed on is answered
with the first application's id and status and publishes nothing; a
``request_id`` reused for a different payload is refused (409).

Every refusal is a ``Refused``: the status the channel API answers, a code,
and the fields at fault; ``ApplicationIntake.refused`` journals it. Whether
the caller is the channel it claims is the HTTP layer's check (signatures,
nonces), done before any of this.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, Protocol

from sqlalchemy.exc import SQLAlchemyError

from adapters.channels.auth import ChannelAuthError, check_type_allowed
from config.settings import ChannelConfig
from contracts.channels import (
    TAX_OPERATION,
    ApplicationRequest,
    entity_of,
    payload_json,
    validate_payload,
)
from contracts.errors import ValidationFailed
from contracts.messages import APPLICATION, application_message
from kernel.deps import Publisher
from storage.applications import payload_hash
from storage.journal import Journal, LogEntry, TxnUpdate

__all__ = ["HOP", "Accepted", "ApplicationIntake", "IntakeStore", "Refused"]

log = logging.getLogger("hub.channels")

HOP: Final = "ingress.channel"
_APP_ID = re.compile(r"^[0-9a-f]{32}$")


class IntakeStore(Protocol):
    """The part of the application store intake uses (``storage.applications``)."""

    async def create(self, channel: str, request_id: str, type: str,
                     payload: dict[str, Any]) -> tuple[dict[str, Any], bool]: ...

    async def get(self, app_id: str) -> dict[str, Any] | None: ...

    async def get_for_channel(self, channel: str, app_id: str) -> dict[str, Any] | None: ...

    async def set_status(self, app_id: str, status: str) -> bool: ...


class Refused(Exception):
    """A request the hub will not take: ``status`` is the channel API's answer to it."""

    def __init__(self, status: int, code: str, errors: Sequence[tuple[str, str]], *,
                 app_id: str | None = None) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.errors = list(errors)
        self.app_id = app_id

    def detail(self) -> dict[str, Any]:
        """``{"code", "reason", "errors": [{"field", "reason"}], "application_id"?}``."""
        out: dict[str, Any] = {
            "code": self.code, "reason": "; ".join(f"{f}: {r}" for f, r in self.errors),
            "errors": [{"field": f, "reason": r} for f, r in self.errors]}
        if self.app_id:
            out["application_id"] = self.app_id
        return out


@dataclass(frozen=True)
class Accepted:
    """The application a submission made (or repeated): its id and status."""

    application_id: str
    status: str
    duplicate: bool = False
    """True: the request was handed on before; nothing new was done."""


@dataclass(frozen=True)
class ApplicationIntake:
    """F1 intake; ``today`` (the Beijing date for age rules) is for tests."""

    store: IntakeStore
    publisher: Publisher
    journal: Journal
    channels: Mapping[str, ChannelConfig]
    today: Callable[[], date] | None = None

    def config(self, channel: str) -> ChannelConfig:
        """The channel's configuration; ``Refused`` 404 for a channel the hub does not know."""
        cfg = self.channels.get(channel)
        if cfg is None:
            raise Refused(404, "UNKNOWN_CHANNEL", [("channel", f"no channel {channel[:40]!r}")])
        return cfg

    async def submit(self, channel: str, cfg: ChannelConfig,
                     req: ApplicationRequest) -> Accepted:
        """Check the type (403) and payload (422), store, publish, mark ``validated``."""
        try:
            check_type_allowed(channel, cfg, req.type)
            model = validate_payload(req.type, req.payload,
                                     today=self.today() if self.today else None)
        except ChannelAuthError as exc:
            raise Refused(exc.status, exc.code, exc.errors) from None
        except ValidationFailed as exc:
            raise Refused(422, exc.code, exc.errors) from None
        payload = payload_json(model)
        try:
            row, created = await self.store.create(channel, req.request_id, req.type, payload)
        except SQLAlchemyError as exc:
            log.error("application store failed: %s", exc)
            raise Refused(503, "UNAVAILABLE", [("store", "the application store is "
                                                         "unavailable; retry")]) from None
        app_id: str = row["id"]
        if not created:
            if row["payload_hash"] != payload_hash(req.type, payload):
                raise Refused(409, "CONFLICT", [("request_id", f"already used for a different "
                                                               f"application ({app_id})")],
                              app_id=app_id)
            if row["status"] != "received":
                await self.log("duplicate", channel, app_id, {"request_id": req.request_id,
                                                              "status": row["status"]})
                return Accepted(app_id, row["status"], duplicate=True)
        msg = application_message(app_id, channel, req.request_id, req.type,
                                  TAX_OPERATION[req.type], payload, entity_of(req.type, model))
        try:
            await self.publisher.publish(msg)  # confirmed by the broker before we answer
        except Exception as exc:
            log.warning("publishing application %s failed: %s", app_id, exc)
            await self.log("failed", channel, app_id, {"request_id": req.request_id,
                                                       "error": type(exc).__name__})
            raise Refused(503, "UNAVAILABLE", [("broker", "the application is kept as "
                                                          "received; retry with the same "
                                                          "request_id")],
                          app_id=app_id) from None
        status = await self._mark_validated(app_id)
        await self.log("ok", channel, app_id,
                       {"request_id": req.request_id, "type": req.type,
                        "message_id": msg.message_id, "republished": not created},
                       TxnUpdate(app_id, APPLICATION, f"{channel}:{req.request_id}",
                                 f"channel.{channel}", "received", only_if_new=True))
        return Accepted(app_id, status)

    async def _mark_validated(self, app_id: str) -> str:
        """``validated``, or where the pipeline has already taken it."""
        try:
            if not await self.store.set_status(app_id, "validated"):
                current = await self.store.get(app_id)
                return str(current["status"]) if current else "validated"
        except SQLAlchemyError as exc:  # published: the pipeline moves it on from here
            log.warning("could not mark application %s validated: %s", app_id, exc)
            return "received"
        return "validated"

    async def find(self, channel: str, application_id: str) -> dict[str, Any]:
        """The channel's own application; ``Refused`` 404 for another's or none."""
        row = (await self.store.get_for_channel(channel, application_id)
               if _APP_ID.match(application_id) else None)
        if row is None:
            raise Refused(404, "NOT_FOUND", [("application_id", f"{channel} has no application "
                                                                f"{application_id[:40]}")])
        return row

    async def refused(self, exc: Refused, channel: str, method: str) -> None:
        """Journal a refusal (masked at rest, like every log entry)."""
        await self.log("rejected", channel, exc.app_id or "-", {
            "method": method, "channel": channel[:40], "status": exc.status,
            "code": exc.code, "errors": [{"field": f, "reason": r} for f, r in exc.errors]})

    async def log(self, outcome: str, channel: str, cid: str, detail: dict[str, Any],
                  *txn: TxnUpdate) -> None:
        """The interaction log; a journal failure never changes the channel's answer."""
        partner = channel if channel in self.channels else "unknown"
        try:
            await self.journal.write(LogEntry(
                message_id=cid, correlation_id=cid, type=APPLICATION, partner=partner,
                direction="in", hop=HOP, outcome=outcome, detail=detail), *txn)
        except Exception:
            log.warning("could not journal a %s channel request", outcome, exc_info=True)
