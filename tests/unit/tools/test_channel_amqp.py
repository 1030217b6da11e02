"""``tools.channel_amqp`` signs what it sends the way the HTTP door checks it (no broker)."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from adapters.channels.auth import ChannelAuthError, MemoryNonceStore, verify_request
from config.settings import ChannelConfig
from tools.channel_amqp import Answer, SubmitFailed, _answer, signed_message

APP = {"type": "resident_enroll", "request_id": "R-1", "payload": {"name": "赵建国"}}


async def test_hmac_signature_is_accepted_by_the_hub_check() -> None:
    cfg = ChannelConfig(secret=SecretStr("s3cret"))
    body, headers = signed_message(APP, "s3cret", channel="my_nanjing")
    assert json.loads(body) == APP and "赵建国".encode() in body  # UTF-8, not escaped
    door = {"method": "POST", "target": "/channels/my_nanjing/applications"}  # the AMQP door's
    await verify_request("my_nanjing", cfg, headers, body, MemoryNonceStore(), **door)
    with pytest.raises(ChannelAuthError):  # the signature covers exactly these bytes
        await verify_request("my_nanjing", cfg, headers, body + b" ", MemoryNonceStore(),
                             **door)
    with pytest.raises(ChannelAuthError):  # and this channel's door only
        await verify_request("gov_office", cfg, headers, body, MemoryNonceStore(),
                             method="POST", target="/channels/gov_office/applications")


async def test_api_key_channels_send_their_key() -> None:
    cfg = ChannelConfig(secret=SecretStr("k3y"), auth="api-key")
    body, headers = signed_message(b'{"a":1}', "k3y", channel="hrss", auth="api-key")
    assert body == b'{"a":1}' and headers == {"X-Api-Key": "k3y"}
    await verify_request("hrss", cfg, headers, body, MemoryNonceStore(), method="POST",
                         target="/channels/hrss/applications")


def test_answers_are_read_and_bad_ones_refused() -> None:
    assert _answer(b'{"status": 202, "body": {"application_id": "A1"}}') == Answer(
        202, {"application_id": "A1"})
    assert not _answer(b'{"status": 401, "body": {}}').accepted
    with pytest.raises(SubmitFailed, match="unreadable"):
        _answer(b"not json")
