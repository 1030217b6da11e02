"""broker.topology: the queue arguments that keep the broker from dropping messages (item 11).

Dead-lettering must be at least once (quorum queues with ``x-dead-letter-strategy:
at-least-once``, which needs ``x-overflow: reject-publish``), and no queue may rely on
the broker's default delivery limit (RabbitMQ 4: 20, then dropped where there is no
dead-letter target). The real broker check is tests/integration/broker.
"""

from __future__ import annotations

import pytest

from broker.channel_inbound import inbound_queue
from broker.dlq import dlq_queue
from broker.topology import DELIVERY_LIMIT, INBOUND_ROUTE, PARKED_DELIVERY_LIMIT, Names
from config.settings import load_settings
from routes.lanes import ROUTES

NAMES = Names("t")
ROUTE_NAMES = [r.name for r in ROUTES]
TIERS = load_settings(env={}, settings_file="/nonexistent/hub.toml").delay_tiers_ms


@pytest.mark.parametrize("route", [*ROUTE_NAMES, INBOUND_ROUTE])
def test_work_queues_dead_letter_at_least_once_to_their_dlq(route: str) -> None:
    q = NAMES.work_queue(route)
    assert q.name == f"t.q.{route}" and q.durable
    assert q.arguments == {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": "t.dlx",
        "x-dead-letter-routing-key": f"t.q.{route}",
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


@pytest.mark.parametrize("tier", TIERS)
def test_wait_tiers_are_quorum_queues_expiring_at_least_once_back_to_work(tier: int) -> None:
    q = NAMES.wait_queue(tier)
    assert q.name == f"t.wait.{tier}ms" and q.durable
    assert q.arguments == {
        "x-queue-type": "quorum",  # classic queues cannot dead-letter at least once
        "x-message-ttl": tier,
        "x-dead-letter-exchange": "t.redeliver",  # keeps the routing key: the work queue
        "x-delivery-limit": PARKED_DELIVERY_LIMIT,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


@pytest.mark.parametrize("route", [*ROUTE_NAMES, INBOUND_ROUTE])
def test_dlqs_have_an_explicit_delivery_limit_no_archiver_failure_reaches(route: str) -> None:
    q = NAMES.dlq_queue(route)
    assert q.name == f"t.dlq.{route}" and q.durable
    assert q.arguments == {"x-queue-type": "quorum", "x-delivery-limit": PARKED_DELIVERY_LIMIT}


def test_the_parked_limit_is_explicit_positive_and_far_above_rabbitmq_4s_default() -> None:
    """Not -1: RabbitMQ 3.10 accepts -1 but then drops a message on its first return."""
    assert PARKED_DELIVERY_LIMIT >= 100_000 > 20
    assert PARKED_DELIVERY_LIMIT < 2**31  # an AMQP signed 32-bit table value


def test_the_archiver_declares_each_dlq_exactly_as_the_topology_does() -> None:
    """A subscriber re-declaring with other arguments would fail with PRECONDITION_FAILED."""
    for route in ROUTE_NAMES:
        mine, archiver = NAMES.dlq_queue(route), dlq_queue(NAMES, route)
        assert (archiver.name, archiver.arguments, archiver.durable) == \
            (mine.name, mine.arguments, mine.durable)


def test_the_channel_door_queue_is_a_work_queue_with_its_own_dlq() -> None:
    q = inbound_queue(NAMES)
    assert q.name == "t.q.channel.inbound" and q.routing_key == "#"
    assert q.arguments == NAMES.work_queue(INBOUND_ROUTE).arguments
    assert q.arguments["x-dead-letter-routing-key"] == "t.q.channel.inbound"  # type: ignore[typeddict-item]
