"""One exception tree for the whole hub; retry logic branches only on its split.

    HubError
    ├── PermanentError          retrying cannot help: tell the originator, do not retry
    │   ├── ValidationFailed    a field is missing or wrong (names the field and reason)
    │   ├── BusinessRejected    the partner said no, with its reason code and text
    │   ├── ClientError         the partner refused the request itself (HTTP 4xx, SOAP Client fault)
    │   └── UnknownMessageType  no route or contract for this type
    └── TransientError          may succeed later: retry with backoff
        ├── PartnerTimeout      no answer within the configured timeout
        └── PartnerUnavailable  connection refused/reset, HTTP 5xx or 429, SOAP Server fault

Clients map their library's exceptions to these at the boundary (see each
adapter's ``client.py``); nothing above the adapters sees httpx, zeep or aio-pika errors.
``field_errors`` is the one translation of pydantic's errors into (field, reason).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

__all__ = [
    "BusinessRejected",
    "ClientError",
    "HubError",
    "PartnerTimeout",
    "PartnerUnavailable",
    "PermanentError",
    "TransientError",
    "UnknownMessageType",
    "ValidationFailed",
    "field_errors",
    "is_infrastructure",
]


_INFRA_NAMES = frozenset({
    "OperationalError", "InterfaceError", "DisconnectionError",  # SQLAlchemy / DB-API
    "ConnectionError", "TimeoutError", "BusyLoadingError", "ReadOnlyError",  # redis
    "AMQPConnectionError", "AMQPError", "ChannelInvalidStateError", "ConnectionClosed",
    "ChannelClosed", "BrokerGone",  # aio-pika / aiormq / our publisher
})


def is_infrastructure(exc: BaseException) -> bool:
    """A failure of a store or the broker, not of the data: worth waiting out.

    Judged by type (OS-level errors) or by the class names in the exception's
    MRO, so the kernel needs no store library; a data error (an integrity or a
    value error) is the message's own fault and is not retried here.
    """
    if isinstance(exc, OSError | TimeoutError | ConnectionError):
        return True
    return any(c.__name__ in _INFRA_NAMES for c in type(exc).__mro__)


def field_errors(exc: ValidationError, *, prefix: str = "", default: str | None = None,
                 rename: Mapping[str, str] | Callable[[str], str] | None = None,
                 first_only: bool = False) -> list[tuple[str, str]]:
    """pydantic's errors as (field, reason) pairs.

    The field is the dotted location behind ``prefix`` (``payload.id_number``);
    ``rename`` maps the top-level name to a wire name (tax's pinyin, a Chinese
    column) and then only that name is kept; an error without a location names
    ``default`` (else the prefix itself, else ``payload``). pydantic's "Value error, "
    preamble is dropped from reasons.
    """
    whole = default or prefix.rstrip(".") or "payload"
    out = []
    for e in exc.errors():
        loc = [str(p) for p in e["loc"]]
        if not loc:
            name = whole
        elif rename is not None:
            name = rename(loc[0]) if callable(rename) else rename.get(loc[0], loc[0])
        else:
            name = prefix + ".".join(loc)
        out.append((name, str(e["msg"]).removeprefix("Value error, ")))
    return out[:1] if first_only else out


class HubError(Exception):
    """Base of every failure the hub reports; ``code`` is stable, ``reason`` is for people."""

    code = "HUB_ERROR"

    def __init__(self, reason: str, *, partner: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.partner = partner

    def to_dict(self) -> dict[str, str]:
        out = {"code": self.code, "reason": self.reason, "kind": self.kind}
        if self.partner:
            out["partner"] = self.partner
        return out

    @property
    def kind(self) -> str:
        return "transient" if isinstance(self, TransientError) else "permanent"

    @property
    def public_code(self) -> str:
        """The code to tell an originator: a partner's own reason code where it gave one."""
        return self.code

    @property
    def public_text(self) -> str:
        """The reason to tell an originator, without the code prefix a partner's has."""
        return self.reason


class PermanentError(HubError):
    code = "PERMANENT"


class TransientError(HubError):
    code = "TRANSIENT"


class ValidationFailed(PermanentError):
    """Names every bad field: ``errors`` is a list of (field, reason)."""

    code = "VALIDATION"

    def __init__(self, errors: list[tuple[str, str]], *, partner: str | None = None) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{f}: {r}" for f, r in errors), partner=partner)

    @classmethod
    def of(cls, exc: ValidationError, *, partner: str | None = None,
           **how: Any) -> ValidationFailed:
        """From pydantic's error (see ``field_errors`` for ``how``)."""
        return cls(field_errors(exc, **how), partner=partner)

    @property
    def field(self) -> str:
        return self.errors[0][0] if self.errors else ""


class BusinessRejected(PermanentError):
    code = "REJECTED"

    def __init__(self, reason_code: str, reason: str, *, partner: str | None = None) -> None:
        super().__init__(f"[{reason_code}] {reason}", partner=partner)
        self.reason_code = reason_code
        self.reason_text = reason

    @property
    def public_code(self) -> str:
        return self.reason_code

    @property
    def public_text(self) -> str:
        return self.reason_text


class ClientError(PermanentError):
    code = "CLIENT_ERROR"


class UnknownMessageType(PermanentError):
    code = "UNKNOWN_TYPE"


class PartnerTimeout(TransientError):
    code = "TIMEOUT"


class PartnerUnavailable(TransientError):
    code = "UNAVAILABLE"
