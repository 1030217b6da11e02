"""broker.channel_inbound: what the AMQP door accepts (item 2).

The routing key becomes part of an in-process request path and the answer goes to
``reply_to``: only configured channel names and the sender's own reply queues pass.
The real-broker check is tests/integration/broker/test_channel_door.py.
"""

from __future__ import annotations

import pytest

from broker.channel_inbound import (
    channel_refusal,
    needs_ownership_check,
    refusal,
    reply_to_refusal,
)
from contracts.channels import CHANNEL_NAMES

CHANNELS = ("my_nanjing", "online_hall")


@pytest.mark.parametrize("key", CHANNELS)
def test_a_configured_channel_name_is_accepted(key: str) -> None:
    assert channel_refusal(key, CHANNELS) is None


@pytest.mark.parametrize("key", [
    "../admin/resend/employee",
    "my_nanjing/../../partners/core/events",
    "my_nanjing/../../partners/tax/callback?",
    "my_nanjing/",
    "my_nanjing?x=1",
    "my_nanjing#",
    "My_Nanjing",
    " my_nanjing",
    "%2e%2e",
    "",
    "#",
    "*",
    "my_nanjing.extra",
])
def test_any_other_routing_key_is_refused_with_the_reason(key: str) -> None:
    reason = channel_refusal(key, CHANNELS)
    assert reason is not None and "is not a configured channel" in reason


def test_a_known_channel_that_is_not_configured_is_refused() -> None:
    """Only ``settings.channels`` counts, not every name the contracts know."""
    other = next(n for n in CHANNEL_NAMES if n not in CHANNELS)
    assert channel_refusal(other, CHANNELS) is not None


def test_a_long_routing_key_is_shortened_in_the_reason() -> None:
    reason = channel_refusal("x" * 300, CHANNELS) or ""
    assert len(reason) < 200 and "..." in reason


DIRECT = ["amq.rabbitmq.reply-to",
          "amq.rabbitmq.reply-to.g1h2AA5yZXBseUAyNzA0ODk2NgAAFmQAAAAAAAAAAQ=="]
EXCLUSIVE = ["amq.gen-JzTY20BRgKO-HjmUJj0wLg", "amq_9688ab5efc4647438168892ee955997b",
             "my-replies"]


@pytest.mark.parametrize("reply_to", [None, "", *DIRECT])
def test_no_reply_to_and_direct_reply_to_are_accepted_without_asking(
        reply_to: str | None) -> None:
    assert not needs_ownership_check(reply_to, "hub")
    assert reply_to_refusal(reply_to, "hub") is None


@pytest.mark.parametrize("reply_to", EXCLUSIVE)
def test_a_queue_exclusive_to_the_senders_connection_is_accepted(reply_to: str) -> None:
    assert needs_ownership_check(reply_to, "hub")
    assert reply_to_refusal(reply_to, "hub", exclusive_elsewhere=True) is None


@pytest.mark.parametrize("reply_to", [*EXCLUSIVE, "partner.inbox", "amq.direct",
                                      "amq.rabbitmq.reply-toX", "other.q.core.sync"])
def test_a_shared_or_missing_queue_is_refused_with_the_reason(reply_to: str) -> None:
    """Anybody may read a shared queue, so its name can be guessed and written into."""
    reason = reply_to_refusal(reply_to, "hub", exclusive_elsewhere=False) or ""
    assert "is not a reply queue of the sender" in reason


@pytest.mark.parametrize("reply_to", ["hub.q.core.sync", "hub.dlq.tax.employee",
                                      "hub.wait.1000ms", "hub.q.channel.inbound",
                                      "hub.probe.victim"])
def test_any_queue_of_the_hubs_namespace_is_refused_even_if_exclusive(reply_to: str) -> None:
    assert not needs_ownership_check(reply_to, "hub")  # no need to ask the broker
    reason = reply_to_refusal(reply_to, "hub", exclusive_elsewhere=True) or ""
    assert "is a queue of the hub itself" in reason


def test_the_namespace_is_the_hubs_own() -> None:
    assert reply_to_refusal("t1.q.core.sync", "t1") is not None
    assert needs_ownership_check("t1.q.core.sync", "hub")  # another hub's: ask the broker


def test_the_predicate_names_the_first_problem() -> None:
    assert refusal("my_nanjing", DIRECT[0], CHANNELS, "hub") is None
    assert refusal("my_nanjing", "amq.gen-abc", CHANNELS, "hub",
                   exclusive_elsewhere=True) is None
    assert "not a configured channel" in (refusal("../x", "hub.q.a", CHANNELS, "hub") or "")
    assert "queue of the hub" in (refusal("my_nanjing", "hub.q.a", CHANNELS, "hub") or "")
