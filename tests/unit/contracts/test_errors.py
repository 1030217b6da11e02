"""The hub's one exception tree: retry logic branches only on transient vs permanent."""

from __future__ import annotations

import pytest

from contracts.errors import (
    BusinessRejected,
    ClientError,
    HubError,
    PartnerTimeout,
    PartnerUnavailable,
    PermanentError,
    TransientError,
    UnknownMessageType,
    ValidationFailed,
)

PERMANENT = [
    (PermanentError("x"), "PERMANENT"),
    (ValidationFailed([("f", "bad")]), "VALIDATION"),
    (BusinessRejected("E1", "no"), "REJECTED"),
    (ClientError("x"), "CLIENT_ERROR"),
    (UnknownMessageType("x"), "UNKNOWN_TYPE"),
]
TRANSIENT = [
    (TransientError("x"), "TRANSIENT"),
    (PartnerTimeout("x"), "TIMEOUT"),
    (PartnerUnavailable("x"), "UNAVAILABLE"),
]


@pytest.mark.parametrize(("exc", "code"), PERMANENT)
def test_permanent_branch(exc: HubError, code: str) -> None:
    assert isinstance(exc, PermanentError)
    assert isinstance(exc, HubError)
    assert not isinstance(exc, TransientError)
    assert exc.kind == "permanent"
    assert exc.code == code


@pytest.mark.parametrize(("exc", "code"), TRANSIENT)
def test_transient_branch(exc: HubError, code: str) -> None:
    assert isinstance(exc, TransientError)
    assert isinstance(exc, HubError)
    assert not isinstance(exc, PermanentError)
    assert exc.kind == "transient"
    assert exc.code == code


def test_codes_are_unique() -> None:
    codes = [c for _, c in PERMANENT + TRANSIENT]
    assert len(codes) == len(set(codes))


def test_hub_error_is_an_exception_with_reason_and_partner() -> None:
    exc = PartnerTimeout("no answer in 5s", partner="tax")
    assert isinstance(exc, Exception)
    assert str(exc) == exc.reason == "no answer in 5s"
    assert exc.partner == "tax"


def test_validation_failed_names_every_field() -> None:
    exc = ValidationFailed([("payload.phone", "must be 11 digits"),
                            ("payload.name", "has digits")])
    assert exc.field == "payload.phone"
    assert exc.errors == [("payload.phone", "must be 11 digits"), ("payload.name", "has digits")]
    assert exc.reason == "payload.phone: must be 11 digits; payload.name: has digits"
    assert str(exc) == exc.reason


def test_validation_failed_without_errors_has_no_field() -> None:
    exc = ValidationFailed([])
    assert exc.field == ""
    assert exc.reason == ""


def test_business_rejected_carries_the_partners_code_and_text() -> None:
    exc = BusinessRejected("E1001", "证件号码已参保", partner="tax")
    assert exc.reason_code == "E1001"
    assert exc.reason_text == "证件号码已参保"
    assert exc.reason == "[E1001] 证件号码已参保"
    assert exc.code == "REJECTED"


def test_to_dict_with_and_without_partner() -> None:
    assert BusinessRejected("E1", "no", partner="tax").to_dict() == {
        "code": "REJECTED", "reason": "[E1] no", "kind": "permanent", "partner": "tax"}
    assert PartnerUnavailable("HTTP 503").to_dict() == {
        "code": "UNAVAILABLE", "reason": "HTTP 503", "kind": "transient"}


def test_base_hub_error_is_neither_branch_but_reports_permanent() -> None:
    # Only TransientError is retried; anything else that is a HubError is final.
    assert HubError("x").kind == "permanent"
    assert HubError("x").code == "HUB_ERROR"
