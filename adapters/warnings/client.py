"""DepartmentPort over HTTP: each warning record posted to the department, signed.

The body is JSON (``adapters.warnings.translate``); the headers carry the hub's HMAC
signature over the canonical request (``contracts.signing``, partner header names:
``X-Partner: hub``, timestamp, nonce, signature) keyed with the department's secret
(``warnings.departments.<name>.secret``), so the department knows the list is the
hub's. Errors are mapped here, at the boundary:

    timeout                         -> PartnerTimeout       (retried)
    connection errors, 5xx, 408/429 -> PartnerUnavailable   (retried, then DLQ)
    other 4xx, code != 0            -> ClientError / BusinessRejected (DLQ, row rejected)
    department not configured, or
    no secret (production)          -> ClientError
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from adapters.http import bounded_client
from adapters.signing import SignedAuth
from adapters.warnings.translate import ack_of, warning_path, warning_to_wire
from config.warnings import DepartmentConfig, department_secret
from contracts.errors import ClientError, PartnerTimeout, PartnerUnavailable

if TYPE_CHECKING:
    from adapters.warnings.port import DepartmentPort

__all__ = ["SIGNER", "DepartmentClient"]

SIGNER = "hub"
"""The caller name the hub signs warning lists as."""


class DepartmentClient:
    """One HTTP client for every department; each record signed with its department's key."""

    def __init__(self, departments: Mapping[str, DepartmentConfig], *,
                 development: bool = False,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._departments = dict(departments)
        self._development = development
        self._http = bounded_client(limit=32, timeout=httpx.Timeout(5.0), transport=transport)

    async def send_warning(self, department: str, payload: dict[str, Any]) -> str:
        partner = f"dept.{department}"
        config = self._departments.get(department)
        if config is None:
            raise ClientError(f"department {department} is not configured", partner=partner)
        secret = department_secret(department, config, development=self._development)
        if not secret:
            raise ClientError(f"department {department} has no secret: set HUB_WARNINGS__"
                              f"DEPARTMENTS__{department.upper()}__SECRET", partner=partner)
        body = json.dumps(warning_to_wire(payload), ensure_ascii=False,
                          separators=(",", ":")).encode()
        url = config.endpoint.rstrip("/") + warning_path(department)
        try:
            r = await self._http.post(url, content=body,
                                      headers={"Content-Type": "application/json"},
                                      auth=SignedAuth(SIGNER, secret),
                                      timeout=config.timeout_s)
        except httpx.TimeoutException as exc:
            raise PartnerTimeout(f"{department} did not answer within {config.timeout_s}s",
                                 partner=partner) from exc
        except httpx.HTTPError as exc:
            raise PartnerUnavailable(f"{department} unreachable: {type(exc).__name__}",
                                     partner=partner) from exc
        if r.status_code >= 500 or r.status_code in (408, 429):
            raise PartnerUnavailable(f"{department} answered HTTP {r.status_code}",
                                     partner=partner)
        if r.status_code >= 300:
            raise ClientError(f"{department} refused the warning: HTTP {r.status_code} "
                              f"{r.text[:200]}", partner=partner)
        try:
            answer = r.json()
        except ValueError as exc:
            raise PartnerUnavailable(f"{department} answered with no JSON",
                                     partner=partner) from exc
        return ack_of(department, answer)

    async def aclose(self) -> None:
        await self._http.aclose()


if TYPE_CHECKING:
    _conforms: type[DepartmentPort] = DepartmentClient
