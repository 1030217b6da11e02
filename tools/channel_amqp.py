"""Submit a citizen-channel application to the hub over AMQP: a small blocking pika client.

For channels (我的南京, 政务办, 网厅, 人社) that prefer the broker to HTTP, and for
testers. It does what a channel does at the AMQP door (``broker/channel_inbound.py``):

1. signs the ``ApplicationRequest`` JSON (``{"type", "request_id", "payload"}``) exactly
   as over HTTP, with ``adapters.channels.auth.signed_headers`` (HMAC-SHA256 over the
   canonical request of ``POST /channels/<channel>/applications``, the request the door
   hands the message to in process: method, target, channel, timestamp, nonce, body
   digest) or ``X-Api-Key`` for an ``api-key`` channel; the headers travel as AMQP
   headers;
2. publishes it persistent, mandatory and with publisher confirms to the exchange
   ``<ns>.channels`` with routing key = the channel's name;
3. waits for the hub's answer on RabbitMQ's direct reply-to (``amq.rabbitmq.reply-to``:
   no reply queue to declare or clean up), matched by ``correlation_id``, for at most
   ``timeout_s``. The answer is the HTTP door's own: ``{"status": 202, "body":
   {"application_id": ...}}`` (200 for a repeated ``request_id``; 401/403/422 as over HTTP).

No answer in time does not mean the hub lost the application: resubmit with the same
``request_id`` and the hub returns the first application (its duplicate rule).

    python -m tools.channel_amqp submit --channel my_nanjing \\
        --file contracts/fixtures/channels/resident_enroll.json \\
        [--amqp amqp://user:pass@host:5672/] [--namespace hub] [--secret S] [--timeout 10]

Without ``--amqp``, ``--namespace`` or ``--secret``, the hub's settings supply them
(``config/hub.toml``, ``HUB_AMQP_URL``, ``HUB_NAMESPACE``,
``HUB_CHANNELS__<NAME>__SECRET``). Prints the answer as JSON; exits 0 when the
application was accepted (2xx), 1 when the hub refused it, 2 when it could not be
submitted or no answer came. Blocking by design: from asyncio, run ``submit`` in a
thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TextIO

import pika
import pika.exceptions

from adapters.channels.auth import HEADER_API_KEY, applications_target, signed_headers

__all__ = ["DIRECT_REPLY_TO", "Answer", "NoAnswer", "SubmitFailed", "main",
           "signed_message", "submit"]

DIRECT_REPLY_TO: Final = "amq.rabbitmq.reply-to"
"""RabbitMQ's pseudo-queue for RPC answers: consumed with auto-ack, never declared."""

Auth = Literal["hmac-sha256", "api-key"]


class SubmitFailed(Exception):
    """The application did not reach the hub (broker unreachable, no such exchange, no
    consumer bound, publish refused), or no usable answer came back."""


class NoAnswer(SubmitFailed, TimeoutError):
    """Published, but the hub did not answer within the timeout (resubmit: same request_id)."""


@dataclass(frozen=True)
class Answer:
    """The hub's answer: the HTTP door's status code and JSON body."""

    status: int
    body: dict[str, Any]

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


def _body(application: bytes | Mapping[str, Any]) -> bytes:
    if isinstance(application, bytes):
        return application
    return json.dumps(application, ensure_ascii=False, separators=(",", ":")).encode()


def signed_message(application: bytes | Mapping[str, Any], secret: str, *, channel: str,
                   auth: Auth = "hmac-sha256") -> tuple[bytes, dict[str, str]]:
    """The body and the authentication headers ``channel`` sends (the HTTP door's scheme:
    the signature covers ``POST /channels/<channel>/applications``, which the AMQP door
    posts the message to in process).

    A mapping is serialised once here: the signature covers exactly the bytes sent.
    """
    body = _body(application)
    headers = {HEADER_API_KEY: secret} if auth == "api-key" else signed_headers(
        secret, body, method="POST", target=applications_target(channel), channel=channel)
    return body, headers


def submit(application: bytes | Mapping[str, Any], *, channel: str, secret: str,
           amqp_url: str, namespace: str = "hub", auth: Auth = "hmac-sha256",
           timeout_s: float = 10.0) -> Answer:
    """Publish one signed application for ``channel`` and wait for the hub's answer.

    Raises ``NoAnswer`` after ``timeout_s`` without an answer, ``SubmitFailed`` when
    the application could not be published (the hub's refusals are answers, not errors).
    """
    body, headers = signed_message(application, secret, channel=channel, auth=auth)
    exchange = f"{namespace}.channels"
    correlation_id = uuid.uuid4().hex
    answers: list[bytes] = []

    def on_answer(_ch: Any, _method: Any, props: Any, payload: bytes) -> None:
        if props.correlation_id == correlation_id:  # anything else is not ours
            answers.append(payload)

    try:
        params = pika.URLParameters(amqp_url)
        params.socket_timeout = params.blocked_connection_timeout = timeout_s
        connection = pika.BlockingConnection(params)
    except pika.exceptions.AMQPError as exc:
        raise SubmitFailed(f"cannot connect to the broker: {type(exc).__name__}: {exc}") from exc
    try:
        ch = connection.channel()
        ch.confirm_delivery()  # the broker confirms the publish; mandatory: it was routed
        # Direct reply-to: consume the pseudo-queue (auto-ack) before publishing on this channel.
        ch.basic_consume(DIRECT_REPLY_TO, on_answer, auto_ack=True)
        ch.basic_publish(exchange, channel, body, pika.BasicProperties(
            content_type="application/json", delivery_mode=pika.DeliveryMode.Persistent,
            headers=headers, reply_to=DIRECT_REPLY_TO, correlation_id=correlation_id,
            message_id=correlation_id, app_id=f"channel:{channel}"), mandatory=True)
        deadline = time.monotonic() + timeout_s
        while not answers:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NoAnswer(f"no answer from the hub on {exchange} within {timeout_s:g} s; "
                               "resubmitting with the same request_id is safe")
            connection.process_data_events(time_limit=min(left, 0.5))
    except pika.exceptions.UnroutableError as exc:
        raise SubmitFailed(f"{exchange} routed nothing for {channel!r}: is the hub running "
                           f"in namespace {namespace!r}?") from exc
    except pika.exceptions.ChannelClosedByBroker as exc:
        raise SubmitFailed(f"the broker refused the publish to {exchange}: "
                           f"{exc.reply_code} {exc.reply_text}") from exc
    except pika.exceptions.AMQPError as exc:
        raise SubmitFailed(f"broker error: {type(exc).__name__}: {exc}") from exc
    finally:
        if connection.is_open:
            connection.close()
    return _answer(answers[0])


def _answer(payload: bytes) -> Answer:
    try:
        data = json.loads(payload)
        status, body = int(data["status"]), data["body"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SubmitFailed(f"unreadable answer from the hub: {payload[:200]!r}") from exc
    return Answer(status, body if isinstance(body, dict) else {"body": body})


# ---------------------------------------------------------------- command line

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.channel_amqp", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("submit", help="submit one application and print the hub's answer")
    s.add_argument("--channel", required=True, help="the channel's name (the routing key)")
    s.add_argument("--file", required=True, type=Path,
                   help='the application JSON: {"type", "request_id", "payload"}')
    s.add_argument("--amqp", help="broker URL (default: the hub's amqp_url)")
    s.add_argument("--namespace", help="the hub's namespace (default: the hub's setting)")
    s.add_argument("--secret", help="the channel's secret (default: the hub's setting)")
    s.add_argument("--auth", choices=("hmac-sha256", "api-key"),
                   help="authentication scheme (default: the channel's setting, else hmac)")
    s.add_argument("--timeout", type=float, default=10.0, help="seconds to wait (default 10)")
    return p


def _resolve(args: argparse.Namespace) -> tuple[str, str, str, Auth]:
    """(amqp_url, namespace, secret, auth): the arguments, else the hub's settings."""
    amqp, namespace, secret, auth = args.amqp, args.namespace, args.secret, args.auth
    if amqp is None or namespace is None or secret is None or auth is None:
        from config.settings import load_settings

        settings = load_settings()
        amqp = amqp or settings.amqp_url
        namespace = namespace or settings.namespace
        cfg = settings.channels.get(args.channel)
        if secret is None:
            if cfg is None:
                raise SubmitFailed(f"no channel {args.channel!r} in the settings: pass --secret")
            secret = cfg.secret.get_secret_value()
        auth = auth or (cfg.auth if cfg is not None else "hmac-sha256")
    return str(amqp), str(namespace), str(secret), auth


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        application = args.file.read_bytes()
        amqp, namespace, secret, auth = _resolve(args)
        answer = submit(application, channel=args.channel, secret=secret, amqp_url=amqp,
                        namespace=namespace, auth=auth, timeout_s=args.timeout)
    except (SubmitFailed, OSError) as exc:
        print(f"channel_amqp: {exc}", file=err)
        return 2
    print(json.dumps({"status": answer.status, "body": answer.body}, ensure_ascii=False),
          file=out)
    return 0 if answer.accepted else 1


if __name__ == "__main__":
    raise SystemExit(main())
