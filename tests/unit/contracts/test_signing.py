"""The one signing scheme: the canonical request, HMAC-SHA256 over it, constant-time
verification, the pure checks, and the request target rebuilt from an ASGI scope."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from contracts.signing import (
    CHANNEL_HEADERS,
    PARTNER_HEADERS,
    SignatureRefused,
    canonical_request,
    check_request,
    request_target,
    sign,
    signed_headers,
    verify,
)

NOW = 1_795_000_000.0
SECRET = "partner-secret-0123"
BODY = b'{"infno":"H2101"}'


def test_the_canonical_request_has_seven_lines_in_a_fixed_order() -> None:
    got = canonical_request("post", "/partners/core/events?x=1", "core", 1_795_000_000,
                            "n" * 16, BODY)
    assert got.split(b"\n") == [
        b"HUB-HMAC-SHA256", b"POST", b"/partners/core/events?x=1", b"core", b"1795000000",
        b"n" * 16, hashlib.sha256(BODY).hexdigest().encode()]
    empty = canonical_request("GET", "/x", "core", 1, "n" * 16, b"")
    assert empty.endswith(hashlib.sha256(b"").hexdigest().encode())


def test_a_line_break_in_a_field_cannot_make_two_requests_one() -> None:
    with pytest.raises(ValueError, match="line break"):
        canonical_request("POST", "/a\ncore", "core", 1, "n" * 16, b"")


def test_sign_and_verify() -> None:
    canonical = canonical_request("POST", "/p", "core", 1, "n" * 16, BODY)
    signature = sign(SECRET, canonical)
    assert signature == hmac.new(SECRET.encode(), canonical, hashlib.sha256).hexdigest()
    assert verify(SECRET, canonical, signature) and verify(SECRET, canonical, signature.upper())
    assert not verify("other", canonical, signature)
    assert not verify(SECRET, canonical, "ü" * 64)  # not ASCII: false, not an exception


def _check(headers: dict[str, str], *, secret: str = SECRET, caller: str = "core",
           target: str = "/p", method: str = "POST", body: bytes = BODY) -> str:
    return check_request(secret, method=method, target=target, caller=caller,
                         headers={k.lower(): v for k, v in headers.items()}, body=body,
                         names=PARTNER_HEADERS, max_skew_s=300, now=NOW)


def _signed(**kw: object) -> dict[str, str]:
    args: dict[str, object] = {"method": "POST", "target": "/p", "caller": "core",
                               "body": BODY, "names": PARTNER_HEADERS, "now": NOW} | kw
    return signed_headers(SECRET, **args)  # type: ignore[arg-type]


def test_partner_headers_name_the_partner_and_channel_headers_do_not() -> None:
    partner = _signed(nonce="n" * 16)
    assert partner[PARTNER_HEADERS.caller or ""] == "core"
    assert _check(partner) == "n" * 16
    channel = signed_headers(SECRET, method="POST", target="/p", caller="my_nanjing",
                             body=BODY, names=CHANNEL_HEADERS, now=NOW)
    assert set(channel) == {"X-Channel-Timestamp", "X-Channel-Nonce", "X-Channel-Signature"}


@pytest.mark.parametrize(("kw", "field"), [
    ({"caller": "tax"}, PARTNER_HEADERS.signature),
    ({"target": "/q"}, PARTNER_HEADERS.signature),
    ({"target": "/p?a=1"}, PARTNER_HEADERS.signature),
    ({"method": "PUT"}, PARTNER_HEADERS.signature),
    ({"body": BODY + b"\n"}, PARTNER_HEADERS.signature),
    ({"secret": "another-secret"}, PARTNER_HEADERS.signature),
    ({"secret": ""}, PARTNER_HEADERS.caller),
    ({"caller": "core\nx"}, PARTNER_HEADERS.caller),
], ids=["caller", "path", "query", "method", "body", "secret", "no-secret", "bad-caller"])
def test_every_part_of_the_request_is_covered(kw: dict[str, str], field: str) -> None:
    with pytest.raises(SignatureRefused) as e:
        _check(_signed(), **kw)  # type: ignore[arg-type]
    assert (e.value.status, e.value.field) == (401, field)


@pytest.mark.parametrize(("headers", "field", "words"), [
    (_signed(now=NOW - 301), PARTNER_HEADERS.timestamp, "old"),
    (_signed(now=NOW + 301), PARTNER_HEADERS.timestamp, "future"),
    (_signed() | {PARTNER_HEADERS.timestamp: "soon"}, PARTNER_HEADERS.timestamp, "unix"),
    (_signed(nonce="x y" * 8), PARTNER_HEADERS.nonce, "16-64"),
    (_signed() | {PARTNER_HEADERS.signature: "z" * 64}, PARTNER_HEADERS.signature, "64 hex"),
    ({PARTNER_HEADERS.nonce: "n" * 16}, PARTNER_HEADERS.timestamp, "missing"),
], ids=["stale", "future", "not-digits", "nonce-chars", "not-hex", "missing"])
def test_each_check_names_its_header(headers: dict[str, str], field: str, words: str) -> None:
    with pytest.raises(SignatureRefused) as e:
        _check(headers)
    assert e.value.field == field and words in e.value.reason


def test_the_window_is_inclusive() -> None:
    _check(_signed(now=NOW - 300))
    _check(_signed(now=NOW + 300))


def test_the_request_target_is_rebuilt_from_the_scope_as_sent() -> None:
    assert request_target({"raw_path": b"/a%20b/c", "path": "/a b/c",
                           "query_string": b"x=1&y=%C3%A9"}) == "/a%20b/c?x=1&y=%C3%A9"
    assert request_target({"raw_path": b"/p", "path": "/p", "query_string": b""}) == "/p"
    assert request_target({"path": "/a b/é", "query_string": b""}) == "/a%20b/%C3%A9"
