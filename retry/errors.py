"""One exception tree for the whole hub; retry logic branches only on its split.

    HubError
    ├── PermanentError          retrying cannot help: tell the originator, do not retry
    │   ├── ValidationFailed    a field is missing or wrong (names the field and reason)
    │   ├── BusinessRejected    the partner said no, with its reason code and text
    │   ├── ClientError         the partner refused the request itself (HTTP 4xx, SOAP Client fault)
    │   └── UnknownMessageType  no route or contract for this type
    └── TransientError          may succeed later: retry with backoff
        ├── PartnerTimeout      no answer within the configured timeout
        ├── PartnerUnavailable  connection refused/reset, HTTP 5xx or 429, SOAP Server fault
        └── CircuitOpen         the hub stopped calling a failing partner for a while

Clients map their library's exceptions to these at the boundary (see each
adapter's ``client.py``); nothing above the adapters sees httpx, zeep or aio-pika errors.
"""

from __future__ import annotations

__all__ = [
    "BusinessRejected",
    "CircuitOpen",
    "ClientError",
    "HubError",
    "PartnerTimeout",
    "PartnerUnavailable",
    "PermanentError",
    "TransientError",
    "UnknownMessageType",
    "ValidationFailed",
]


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

    @property
    def field(self) -> str:
        return self.errors[0][0] if self.errors else ""


class BusinessRejected(PermanentError):
    code = "REJECTED"

    def __init__(self, reason_code: str, reason: str, *, partner: str | None = None) -> None:
        super().__init__(f"[{reason_code}] {reason}", partner=partner)
        self.reason_code = reason_code
        self.reason_text = reason


class ClientError(PermanentError):
    code = "CLIENT_ERROR"


class UnknownMessageType(PermanentError):
    code = "UNKNOWN_TYPE"


class PartnerTimeout(TransientError):
    code = "TIMEOUT"


class PartnerUnavailable(TransientError):
    code = "UNAVAILABLE"


class CircuitOpen(TransientError):
    code = "CIRCUIT_OPEN"
