"""Channel authentication: HMAC over the canonical request (method, target, channel,
timestamp, nonce, body digest); API keys; replays; types."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from typing import Any

import pytest
from pydantic import SecretStr

from adapters.channels.auth import (
    HEADER_API_KEY,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    ChannelAuthError,
    MemoryNonceStore,
    TypeNotAllowed,
    allowed_types,
    check_type_allowed,
    verify_request,
)
from adapters.channels.auth import signed_headers as channel_headers
from config.settings import ChannelConfig
from contracts.channels import CHANNEL_TYPES
from contracts.errors import PartnerUnavailable
from contracts.signing import canonical_request, sign

NOW = 1_795_000_000.0
SECRET = "s3cret-of-my-nanjing"
BODY = b'{"type":"resident_enroll"}'
HMAC_CFG = ChannelConfig(secret=SecretStr(SECRET), max_skew_s=300)
KEY_CFG = ChannelConfig(auth="api-key", secret=SecretStr("key-of-hrss-0123"))
TARGET = "/channels/my_nanjing/applications"


def signed_headers(secret: str, body: bytes, *, now: float, nonce: str | None = None,
                   method: str = "POST", target: str = TARGET,
                   channel: str = "my_nanjing") -> dict[str, str]:
    """my_nanjing's headers for a submission, unless told otherwise."""
    return channel_headers(secret, body, method=method, target=target, channel=channel,
                           now=now, nonce=nonce)


async def verify(headers: dict[str, str], *, body: bytes = BODY, cfg: ChannelConfig = HMAC_CFG,
                 nonces: Any = None, now: float = NOW, method: str = "POST",
                 target: str = TARGET, channel: str = "my_nanjing") -> None:
    await verify_request(channel, cfg, headers, body, nonces or MemoryNonceStore(),
                         method=method, target=target, now=now)


def test_sign_is_hmac_sha256_over_the_canonical_request() -> None:
    canonical = (b"HUB-HMAC-SHA256\nPOST\n/channels/my_nanjing/applications\nmy_nanjing\n"
                 b"1795000000\nabcdefabcdefabcd\n" + hashlib.sha256(BODY).hexdigest().encode())
    assert canonical_request("post", TARGET, "my_nanjing", 1_795_000_000, "abcdefabcdefabcd",
                             BODY) == canonical
    expected = hmac.new(SECRET.encode(), canonical, hashlib.sha256).hexdigest()
    assert sign(SECRET, canonical) == expected
    assert sign(SECRET.encode(), canonical) == expected
    headers = signed_headers(SECRET, BODY, now=NOW, nonce="abcdefabcdefabcd")
    assert headers[HEADER_SIGNATURE] == expected


def test_signed_headers_carry_a_fresh_nonce() -> None:
    a = signed_headers(SECRET, BODY, now=NOW)
    b = signed_headers(SECRET, BODY, now=NOW)
    assert a[HEADER_TIMESTAMP] == "1795000000"
    assert a[HEADER_NONCE] != b[HEADER_NONCE] and len(a[HEADER_NONCE]) == 32
    assert a[HEADER_SIGNATURE] == sign(SECRET, canonical_request(
        "POST", TARGET, "my_nanjing", "1795000000", a[HEADER_NONCE], BODY))
    fixed = signed_headers(SECRET, BODY, now=NOW, nonce="n" * 16)
    assert fixed[HEADER_NONCE] == "n" * 16


@pytest.mark.parametrize(("signed", "sent"), [
    ({"target": "/channels/my_nanjing/applications/" + "a" * 32},
     {"target": "/channels/my_nanjing/applications/" + "b" * 32}),
    ({"method": "GET"}, {"method": "POST"}),
    ({"channel": "gov_office", "target": "/channels/gov_office/applications"},
     {"channel": "my_nanjing"}),
    ({"target": TARGET + "?x=1"}, {"target": TARGET}),
], ids=["other-application-id", "other-method", "other-channel-same-secret", "other-query"])
async def test_a_captured_signature_cannot_be_pointed_elsewhere(
        signed: dict[str, str], sent: dict[str, str]) -> None:
    """The signature covers method, target and channel: a request signed for one is refused
    for another, even by a channel sharing the secret."""
    headers = signed_headers(SECRET, BODY, now=NOW, **signed)
    where: dict[str, Any] = dict(signed)
    await verify(dict(headers), **where)  # good where it was signed for
    elsewhere: dict[str, Any] = dict(sent)
    with pytest.raises(ChannelAuthError) as e:
        await verify(dict(headers), **elsewhere)
    assert (e.value.status, e.value.field) == (401, HEADER_SIGNATURE)


async def test_a_good_signature_passes_once() -> None:
    nonces = MemoryNonceStore()
    headers = signed_headers(SECRET, BODY, now=NOW)
    await verify(headers, nonces=nonces)
    with pytest.raises(ChannelAuthError) as e:
        await verify(headers, nonces=nonces)
    assert (e.value.status, e.value.field) == (401, HEADER_NONCE)


async def test_header_names_are_case_insensitive() -> None:
    headers = {k.lower(): v for k, v in signed_headers(SECRET, BODY, now=NOW).items()}
    await verify(headers)


async def test_the_timestamp_window_is_inclusive() -> None:
    await verify(signed_headers(SECRET, BODY, now=NOW - 300))
    await verify(signed_headers(SECRET, BODY, now=NOW + 300))


def _broken(**change: str | None) -> dict[str, str]:
    headers = signed_headers(SECRET, BODY, now=NOW)
    for k, v in change.items():
        name = {"ts": HEADER_TIMESTAMP, "nonce": HEADER_NONCE, "sig": HEADER_SIGNATURE}[k]
        if v is None:
            headers.pop(name)
        else:
            headers[name] = v
    return headers


@pytest.mark.parametrize(("headers", "field", "words"), [
    (_broken(ts=None), HEADER_TIMESTAMP, "missing"),
    (_broken(nonce=None), HEADER_NONCE, "missing"),
    (_broken(sig=None), HEADER_SIGNATURE, "missing"),
    (_broken(ts=" "), HEADER_TIMESTAMP, "missing"),
    (_broken(ts="2026-11-24T10:00:00"), HEADER_TIMESTAMP, "unix seconds"),
    (signed_headers(SECRET, BODY, now=NOW - 301), HEADER_TIMESTAMP, "old"),
    (signed_headers(SECRET, BODY, now=NOW + 301), HEADER_TIMESTAMP, "future"),
    (signed_headers(SECRET, BODY, now=NOW, nonce="short"), HEADER_NONCE, "16-64"),
    (signed_headers(SECRET, BODY, now=NOW, nonce="n" * 65), HEADER_NONCE, "16-64"),
    (signed_headers(SECRET, BODY, now=NOW, nonce="bad nonce with space"), HEADER_NONCE,
     "16-64"),
    (_broken(sig="abc"), HEADER_SIGNATURE, "64 hex"),
    (_broken(sig="0" * 64), HEADER_SIGNATURE, "does not match"),
    (signed_headers("another-channel-secret", BODY, now=NOW), HEADER_SIGNATURE,
     "does not match"),
], ids=["no-ts", "no-nonce", "no-sig", "blank-ts", "iso-ts", "stale", "future", "short-nonce",
        "long-nonce", "nonce-chars", "short-sig", "zero-sig", "other-secret"])
async def test_each_refusal_names_its_header(headers: dict[str, str], field: str,
                                             words: str) -> None:
    with pytest.raises(ChannelAuthError) as e:
        await verify(headers)
    assert (e.value.status, e.value.field) == (401, field)
    assert words in e.value.reason


async def test_a_changed_body_breaks_the_signature() -> None:
    with pytest.raises(ChannelAuthError) as e:
        await verify(signed_headers(SECRET, BODY, now=NOW), body=BODY + b" ")
    assert e.value.field == HEADER_SIGNATURE


async def test_a_bad_signature_does_not_spend_the_nonce() -> None:
    nonces = MemoryNonceStore()
    good = signed_headers(SECRET, BODY, now=NOW)
    with pytest.raises(ChannelAuthError):
        await verify(dict(good, **{HEADER_SIGNATURE: "0" * 64}), nonces=nonces)
    await verify(good, nonces=nonces)


async def test_uppercase_hex_is_accepted() -> None:
    headers = signed_headers(SECRET, BODY, now=NOW)
    headers[HEADER_SIGNATURE] = headers[HEADER_SIGNATURE].upper()
    await verify(headers)


async def test_api_key_channels() -> None:
    await verify({HEADER_API_KEY: "key-of-hrss-0123"}, cfg=KEY_CFG)
    for headers, words in (({}, "missing"), ({HEADER_API_KEY: "key-of-hrss-0124"}, "wrong"),
                           (signed_headers("key-of-hrss-0123", BODY, now=NOW, channel="hrss"),
                            "missing")):
        with pytest.raises(ChannelAuthError) as e:
            await verify(headers, cfg=KEY_CFG)
        assert (e.value.field, e.value.status) == (HEADER_API_KEY, 401)
        assert words in e.value.reason


async def test_a_channel_without_a_secret_is_refused() -> None:
    with pytest.raises(ChannelAuthError) as e:
        await verify({HEADER_API_KEY: ""}, cfg=ChannelConfig(auth="api-key",
                                                             secret=SecretStr("")))
    assert e.value.field == "channel"


async def test_a_failing_nonce_store_is_transient() -> None:
    class Down:
        async def seen(self, channel: str, nonce: str, ttl_s: int) -> bool:
            raise ConnectionError("redis gone")

    with pytest.raises(PartnerUnavailable):
        await verify(signed_headers(SECRET, BODY, now=NOW), nonces=Down())


async def test_memory_nonces_are_per_channel_expire_and_are_atomic() -> None:
    t = [0.0]
    store = MemoryNonceStore(clock=lambda: t[0])
    assert await store.seen("a", "n" * 16, 10) is False
    assert await store.seen("a", "n" * 16, 10) is True
    assert await store.seen("b", "n" * 16, 10) is False
    t[0] = 10.5
    assert await store.seen("a", "n" * 16, 10) is False
    results = await asyncio.gather(*(store.seen("c", "m" * 16, 10) for _ in range(50)))
    assert results.count(False) == 1


async def test_memory_nonces_purge_expired_entries() -> None:
    t = [0.0]
    store = MemoryNonceStore(clock=lambda: t[0])
    for i in range(1023):
        await store.seen("a", f"{i:016d}", 1)
    t[0] = 5.0
    await store.seen("a", "x" * 16, 1)
    assert len(store._until) == 1


def test_types_come_from_the_seed_or_the_configuration() -> None:
    assert allowed_types("my_nanjing", HMAC_CFG) == CHANNEL_TYPES["my_nanjing"]
    narrowed = ChannelConfig(secret=SecretStr("x"), types=("resident_enroll", "no_such"))
    assert allowed_types("my_nanjing", narrowed) == ("resident_enroll",)
    assert allowed_types("unknown_channel", HMAC_CFG) == ()
    check_type_allowed("hrss", HMAC_CFG, "retire")
    with pytest.raises(TypeNotAllowed) as e:
        check_type_allowed("my_nanjing", HMAC_CFG, "retire")
    assert (e.value.status, e.value.field, e.value.code) == (403, "type", "FORBIDDEN")
    with pytest.raises(TypeNotAllowed):
        check_type_allowed("my_nanjing", narrowed, "student_enroll")
