"""The pika client of ``tools.channel_amqp`` against a real hub: an application submitted
over AMQP is accepted (answer on direct reply-to), completed, and its result pushed to the
channel's callback (counted at the channel simulator)."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from typing import Any

import httpx
import pytest

from adapters.channels.auth import signed_headers
from config.settings import load_settings
from simulators.core import CoreStore
from simulators.harness import Stack, fast_policies, running_stack
from tools.channel_amqp import NoAnswer, SubmitFailed, main, submit
from tools.fixtures.generate_channels import ROOT

pytestmark = pytest.mark.integration

CHANNEL = "my_nanjing"


def application(request_id: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((ROOT / "resident_enroll.json").read_text(encoding="utf-8"))
    return body | {"request_id": request_id}


def _stack() -> Any:
    s = load_settings()
    store = CoreStore.seed(2, 4, rng_seed=random.randrange(10**9))
    return running_stack(s, store=store, overrides=fast_policies(s))


async def _status(st: Stack, app_id: str) -> dict[str, Any]:
    secret = st.settings.channels[CHANNEL].secret.get_secret_value()
    async with httpx.AsyncClient(timeout=10) as http:
        target = f"/channels/{CHANNEL}/applications/{app_id}"
        r = await http.get(f"{st.hub_url}{target}", headers=signed_headers(
            secret, b"", method="GET", target=target, channel=CHANNEL))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def _until_pushed(st: Stack, app_id: str, timeout: float = 20) -> dict[str, Any]:
    got: dict[str, Any] = {}
    for _ in range(int(timeout / 0.05)):
        got = await _status(st, app_id)
        if got["status"] in ("completed", "rejected") and app_id in st.inbox.results:
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"{app_id} not final and pushed: {got}")


def _submit(st: Stack, app: dict[str, Any], **kw: Any) -> Any:
    """``submit`` in a thread (it blocks), with the stack's broker, namespace and secret."""
    args: dict[str, Any] = {
        "channel": CHANNEL, "amqp_url": st.settings.amqp_url,
        "namespace": st.settings.namespace, "timeout_s": 15.0,
        "secret": st.settings.channels[CHANNEL].secret.get_secret_value()} | kw
    return asyncio.to_thread(submit, app, **args)


async def test_an_application_submitted_with_pika_is_accepted_completed_and_pushed() -> None:
    async with _stack() as st:
        request_id = f"AMQP-{uuid.uuid4().hex[:12]}"
        answer = await _submit(st, application(request_id))
        assert answer.status == 202 and answer.accepted, answer
        app_id = answer.body["application_id"]
        final = await _until_pushed(st, app_id)
        assert final["status"] == "completed", final
        result = st.inbox.results[app_id]
        assert result["_channel"] == CHANNEL and result["status"] == "completed"
        assert st.channel_state.log.summary()["effects"] == 1  # one callback, counted there
        assert st.inbox.bad_signatures == 0
        assert len(st.store.applications) == 1  # registered once at core

        # the same request id again: the first application, as over HTTP
        again = await _submit(st, application(request_id))
        assert again.status == 200 and again.body["application_id"] == app_id, again
        assert len(st.store.applications) == 1


async def test_the_amqp_door_refuses_a_wrong_signature_with_an_answer() -> None:
    async with _stack() as st:
        answer = await _submit(st, application("AMQP-BADSIG-1"), secret="not-the-secret")
        assert answer.status == 401 and not answer.accepted
        assert answer.body["code"] == "UNAUTHORIZED", answer.body
        assert not st.store.applications


async def test_a_namespace_without_a_hub_fails_to_submit() -> None:
    s = load_settings()
    with pytest.raises(SubmitFailed) as e:
        await asyncio.to_thread(submit, application("AMQP-NOHUB-1"), channel=CHANNEL,
                                secret="x", amqp_url=s.amqp_url,
                                namespace=f"nohub{uuid.uuid4().hex[:8]}", timeout_s=5)
    assert not isinstance(e.value, NoAnswer)


async def test_the_command_line_prints_the_answer(tmp_path: Any,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    async with _stack() as st:
        path = tmp_path / "app.json"
        path.write_text(json.dumps(application(f"AMQP-CLI-{uuid.uuid4().hex[:8]}"),
                                   ensure_ascii=False), encoding="utf-8")
        argv = ["submit", "--channel", CHANNEL, "--file", str(path), "--amqp",
                st.settings.amqp_url, "--namespace", st.settings.namespace, "--timeout", "15"]
        assert await asyncio.to_thread(main, argv) == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed["status"] == 202 and printed["body"]["application_id"]
