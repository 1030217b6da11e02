"""The ``hub`` command line: options anywhere, exit codes, help text, the admin API and
the traffic door reached over HTTP (an in-process transport records every call)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import cli.common
import main
from cli.common import EXIT_CODES
from cli.main import app, run_cli

runner = CliRunner()


class Recorder:
    """Answers like the hub / the door would, and keeps each request."""

    def __init__(self, answers: dict[tuple[str, str], Any] | None = None,
                 status: int = 200) -> None:
        self.calls: list[httpx.Request] = []
        self.answers = answers or {}
        self.status = status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        body = self.answers.get((request.method, request.url.path), {})
        return httpx.Response(self.status, json=body)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    rec = Recorder({("GET", "/admin/dead-letters"): {"items": [], "total": 0, "offset": 0},
                    ("POST", "/traffic/core"): {"sent": 5, "accepted": 5, "refused": 0,
                                                "failed": 0, "ids": ["m1"]}})
    monkeypatch.setattr(cli.common, "transport_for_tests", httpx.MockTransport(rec))
    monkeypatch.delenv("HUB_TOKEN", raising=False)
    monkeypatch.delenv("HUB_ADMIN_TOKEN", raising=False)
    yield rec


def test_help_lists_every_operation_and_the_exit_codes() -> None:
    r = runner.invoke(app, ["--help"], terminal_width=200)
    assert r.exit_code == 0
    for command in ("run", "simulate", "demo", "replay", "dlq", "resend", "batches",
                    "reconcile", "returnfiles", "migrate", "jobs", "traffic"):
        assert command in r.output
    assert "Exit codes" in r.output
    for code, text in EXIT_CODES.items():
        assert text.split(" (")[0] in " ".join(r.output.split()), code


@pytest.mark.parametrize("argv", [
    ["--token", "T", "--url", "http://hub.test", "dlq", "list"],
    ["dlq", "list", "--token", "T", "--url", "http://hub.test"],
    ["--url", "http://hub.test", "dlq", "list", "--token", "T"],
])
def test_global_options_are_accepted_anywhere(hub: Recorder, argv: list[str]) -> None:
    r = runner.invoke(app, argv)
    assert r.exit_code == 0, r.output
    [call] = hub.calls
    assert call.url.host == "hub.test" and call.url.path == "/admin/dead-letters"
    assert call.headers["Authorization"] == "Bearer T"


def test_a_command_option_wins_over_the_global_one(hub: Recorder) -> None:
    r = runner.invoke(app, ["--token", "outer", "dlq", "list", "--token", "inner",
                            "--url", "http://hub.test"])
    assert r.exit_code == 0
    assert hub.calls[0].headers["Authorization"] == "Bearer inner"


def test_filters_go_to_the_admin_api_and_json_prints_the_answer(hub: Recorder) -> None:
    r = runner.invoke(app, ["dlq", "list", "--partner", "tax", "--reason", "UNAVAILABLE",
                            "--since", "2h", "--json", "--token", "T"])
    assert r.exit_code == 0
    params = hub.calls[0].url.params
    assert params["partner"] == "tax" and params["reason_code"] == "UNAVAILABLE"
    assert params["since"].endswith("+00:00")
    assert json.loads(r.output) == {"items": [], "total": 0, "offset": 0}


def test_exit_codes(hub: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    assert runner.invoke(app, ["dlq", "list"]).exit_code == 2  # no token
    assert runner.invoke(app, ["dlq", "nope", "--token", "T"]).exit_code == 2  # usage
    assert runner.invoke(app, ["dlq", "retry", "--reason", "x", "--all",
                               "--token", "T"]).exit_code == 2  # --all without --yes
    hub.status = 403
    r = runner.invoke(app, ["dlq", "list", "--token", "T"])
    assert r.exit_code == 1 and "HTTP 403" in r.output
    hub.status = 503
    assert runner.invoke(app, ["dlq", "list", "--token", "T"]).exit_code == 3

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    monkeypatch.setattr(cli.common, "transport_for_tests", httpx.MockTransport(down))
    r = runner.invoke(app, ["dlq", "list", "--token", "T"])
    assert r.exit_code == 3 and "cannot reach the hub" in r.output


def test_a_group_retry_goes_on_while_calls_get_work_done(hub: Recorder) -> None:
    answers = iter([{"done": [{"id": 1}, {"id": 2}], "skipped": [], "failed": [],
                     "remaining": 1, "audit_id": 7},
                    {"done": [], "skipped": [], "failed": [{"id": 3, "reason": "gone"}],
                     "remaining": 0, "audit_id": 8}])
    hub.answers[("POST", "/admin/dead-letters/retry")] = None

    def answer(request: httpx.Request) -> httpx.Response:
        hub.calls.append(request)
        return httpx.Response(200, json=next(answers))

    cli.common.transport_for_tests = httpx.MockTransport(answer)
    r = runner.invoke(app, ["dlq", "retry", "--group", "UNAVAILABLE", "--partner", "tax",
                            "--reason", "tax is back", "--token", "T"])
    assert len(hub.calls) == 2
    body = json.loads(hub.calls[0].content)
    assert body["group"] == {"reason_code": "UNAVAILABLE", "partner": "tax", "type": None}
    assert r.exit_code == 1  # one failed
    assert "retried 2, skipped 0, failed 1" in r.output


def test_traffic_sends_in_chunks_to_the_door_with_its_token(hub: Recorder) -> None:
    r = runner.invoke(app, ["traffic", "core", "--count", "12", "--chunk", "5",
                            "--sim-url", "http://sims.test", "--sim-token", "S"])
    assert r.exit_code == 0, r.output
    assert [json.loads(c.content)["count"] for c in hub.calls] == [5, 5, 2]
    assert {c.url.host for c in hub.calls} == {"sims.test"}
    assert {c.headers["X-Sim-Token"] for c in hub.calls} == {"S"}
    assert "sent 15, hub accepted 15" in r.output  # the door's (recorded) answers summed


def test_a_fault_switch_names_its_mode(hub: Recorder) -> None:
    hub.answers[("POST", "/traffic/faults/tax")] = [{"kind": "http_5xx", "rate": 1.0}]
    r = runner.invoke(app, ["traffic", "fault", "tax", "--mode", "5xx", "--rate", "1.0"])
    assert r.exit_code == 0
    assert json.loads(hub.calls[0].content)["mode"] == "5xx"
    assert "tax: http_5xx rate 1.0" in r.output


def test_main_main_is_the_same_command_line(hub: Recorder) -> None:
    assert main.main(["dlq", "list", "--token", "T"]) == 0
    assert run_cli(["dlq", "list"]) == 2
    assert main.main(["--help"]) == 0
