"""The Celery side of ``bench/pipeline``: the hub's bench route as a Celery 5 task.

Imported by the worker that ``bench.pipeline.bench_celery`` starts as a subprocess
(``celery -A bench.celery_app worker --pool solo``) and by the bench itself to send the
tasks. Configured from the environment (``BENCH_CELERY_*``) because the worker is another
process. The task does the hand-written consumer's work: envelope and payload validated
by pydantic, Redis ``SET NX`` on the idempotency key, the SOAP translation
(``build_enroll_request``), a persistent publish to the sink queue awaited for its
publisher confirm; ``acks_late`` so the task message is acked only after all that.
Celery is a bench-only dependency (the ``bench`` extra).
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import urlparse

import amqp
import redis
from celery import Celery
from kombu import Queue  # type: ignore[attr-defined]

from adapters.tax.soap import build_enroll_request
from contracts.employee import EmployeeEnrollment
from contracts.envelope import HubMessage

BROKER_URL = os.environ.get("BENCH_CELERY_BROKER", "amqp://guest:guest@localhost:5672//")
QUEUE = os.environ.get("BENCH_CELERY_QUEUE", "bench.celery.in")
SINK = os.environ.get("BENCH_CELERY_SINK", "bench.celery.sink")
REDIS_URL = os.environ.get("BENCH_CELERY_REDIS", "redis://localhost:6379/0")
PREFIX = os.environ.get("BENCH_CELERY_PREFIX", "bench:celery:idem:")
PREFETCH = int(os.environ.get("BENCH_CELERY_PREFETCH", "64"))

app = Celery("bench", broker=BROKER_URL.replace("amqp://", "pyamqp://", 1))
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    task_default_queue=QUEUE,
    task_queues=[Queue(QUEUE, queue_arguments={"x-queue-type": "quorum"},  # type: ignore[no-untyped-call]
                        durable=True)],
    task_default_delivery_mode="persistent",
    worker_prefetch_multiplier=PREFETCH,
    broker_transport_options={"confirm_publish": True},
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)

_sink: dict[str, Any] = {}


def _sink_channel() -> Any:
    """One confirmed channel per worker process, opened on the first task."""
    if "ch" not in _sink:
        u = urlparse(BROKER_URL)
        conn = amqp.Connection(host=f"{u.hostname or 'localhost'}:{u.port or 5672}",
                               userid=u.username or "guest", password=u.password or "guest",
                               virtual_host=(u.path[1:] or "/") if u.path != "//" else "/",
                               confirm_publish=True)
        conn.connect()
        _sink["conn"], _sink["ch"] = conn, conn.channel()
        _sink["redis"] = redis.Redis.from_url(REDIS_URL)
    return _sink["ch"]


@app.task(name="bench.enroll", acks_late=True)  # type: ignore[untyped-decorator]
def enroll(body: str) -> None:
    """The bench route's work for one message (see the module docstring)."""
    ch = _sink_channel()
    msg = HubMessage.model_validate_json(body)
    req = EmployeeEnrollment.model_validate(msg.payload)
    if not _sink["redis"].set(PREFIX + msg.idempotency_key, "1", nx=True, ex=3600):
        return  # a duplicate: one effect only
    build_enroll_request(req, msg.message_id)
    out = json.dumps({"accept_no": msg.message_id[:20], "causation_id": msg.message_id})
    ch.basic_publish(amqp.Message(out, delivery_mode=2), exchange="", routing_key=SINK)
