"""Reading what arrives on a DLQ: hub parking headers, RabbitMQ's x-death, unreadable bodies;
and the headers a retry starts with."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from broker import dlq
from broker.dlq import describe, retry_headers
from tests.support.ops import envelope

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def _describe(body: bytes, headers: dict[str, object], **kw: object):  # type: ignore[no-untyped-def]
    return describe("tax.employee", body, headers, queue="hub.q.tax.employee", partner="tax",
                    now=NOW, **kw)  # type: ignore[arg-type]


def test_a_message_parked_by_the_runtime_keeps_its_reason_and_ids() -> None:
    msg = envelope(7)
    d = _describe(msg.to_body(), {"x-dead-reason": "tax answered 503", "x-dead-code":
                                  "UNAVAILABLE", "x-attempt": 5, "x-route": "tax.employee",
                                  "x-first-seen": "2026-11-26T08:00:00+00:00",
                                  # it went through a wait tier: routine, not the cause
                                  "x-death": [{"reason": "expired", "queue": "hub.wait.1000ms",
                                               "count": 4}]})
    assert (d.reason_code, d.reason, d.attempts) == ("UNAVAILABLE", "tax answered 503", 5)
    assert (d.message_id, d.correlation_id, d.type, d.source) == \
        (msg.message_id, "c7", "tax.employee.enroll", "core")
    assert d.first_seen == datetime(2026, 11, 26, 8, 0, tzinfo=UTC) and d.dead_at == NOW
    assert (d.route, d.queue, d.partner, d.status) == \
        ("tax.employee", "hub.q.tax.employee", "tax", "dead")


def test_a_crash_loop_dead_lettered_by_rabbitmq_names_the_delivery_limit() -> None:
    d = _describe(envelope(1).to_body(), {"x-attempt": 2, "x-death": [
        {"reason": "delivery_limit", "queue": "hub.q.tax.employee", "count": 1,
         "time": datetime(2026, 11, 26, 8, 59, tzinfo=UTC)},
        {"reason": "expired", "queue": "hub.wait.5000ms", "count": 2}]})
    assert d.reason_code == "delivery_limit"
    assert "from hub.q.tax.employee" in d.reason and "crash loop" in d.reason
    assert d.attempts == 2


def test_broker_reject_and_first_death_headers_without_x_death() -> None:
    d = _describe(b"{}", {"x-death": [{"reason": b"rejected", "queue": b"hub.q.core.sync"}]})
    assert d.reason_code == "rejected" and "rejected by a consumer" in d.reason
    d = _describe(b"{}", {"x-first-death-reason": "maxlen", "x-first-death-queue": "q"})
    assert (d.reason_code, d.reason) == ("maxlen", "RabbitMQ dead-lettered it from q: maxlen")
    d = _describe(b"{}", {})
    assert d.reason_code == "UNKNOWN"


def test_an_unreadable_body_is_kept_raw_with_amqp_properties() -> None:
    raw = b'{"type": "tax.employee.enroll"'
    d = _describe(raw, {"x-dead-reason": "body: not valid JSON", "x-dead-code": "VALIDATION",
                        "x-attempt": "garbled"},
                  message_id="made-up-by-the-client", correlation_id="this-too", type_=None)
    assert d.body == raw and d.message_id == "-"  # parked by the hub: AMQP ids name nothing
    assert (d.correlation_id, d.type, d.source, d.attempts) == ("-", "-", "-", 0)
    d = _describe(raw, {"x-death": [{"reason": "delivery_limit"}]}, message_id="m1",
                  correlation_id="c1", type_="tax.employee.enroll")
    assert (d.message_id, d.correlation_id, d.type) == ("m1", "c1", "tax.employee.enroll")
    assert d.first_seen == NOW
    assert _describe(b"\xff\xfe", {}).body == b"\xff\xfe"
    assert _describe(b"[1, 2]", {}).message_id == "-"


def test_retry_headers_start_a_fresh_life() -> None:
    stored = {"x-attempt": 5, "x-failures": "[...]", "x-first-seen": "2026-01-01T00:00:00",
              "x-dead-reason": "r", "x-dead-code": "C", "x-route": "tax.employee",
              "x-death": [{"reason": "expired"}], "x-last-death-reason": "expired",
              "hub-delay-ms": 1000, "x-retry-of": 3, "x-idempotency-key": "k",
              "x-source": "core", "x-entity": "psn:abc"}
    h = retry_headers(stored, retry_of=9, now=NOW)
    assert h == {"x-attempt": 0, "x-retry-of": 9, "x-first-seen": NOW.isoformat(),
                 "x-idempotency-key": "k", "x-source": "core", "x-entity": "psn:abc"}
    assert stored["x-attempt"] == 5  # not modified in place


class _FlakyStore:
    def __init__(self, failures: int) -> None:
        self.failures, self.added = failures, 0

    async def add(self, letter: object) -> int:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database down")
        self.added += 1
        return 1


async def test_the_archiver_retries_the_insert_then_gives_the_message_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Acked only once stored; a database that stays down returns it to the queue."""
    monkeypatch.setattr(dlq, "STORE_BACKOFF_MAX_S", 0.0)
    monkeypatch.setattr(dlq, "STORE_ATTEMPTS", 3)
    d = _describe(b"{}", {})
    flaky = _FlakyStore(failures=2)
    assert await dlq._store(flaky, d, "q") is True and flaky.added == 1  # type: ignore[arg-type]
    down = _FlakyStore(failures=99)
    assert await dlq._store(down, d, "q") is False and down.added == 0  # type: ignore[arg-type]
