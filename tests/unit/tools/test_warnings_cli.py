"""``tools.warnings_cli``: each command calls the admin API with the bearer token and
exits non-zero on a refusal."""

from __future__ import annotations

import json

import httpx
import pytest

from tools.warnings_cli import main


def test_commands_call_the_admin_api(capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[tuple[str, str, str, bytes]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, str(request.url), request.headers.get("authorization", ""),
                     request.content))
        if request.url.path.endswith("/resend"):
            return httpx.Response(403, json={"detail": "forbidden"})
        return httpx.Response(202, json={"published": 0})

    t = httpx.MockTransport(handler)
    assert main(["--hub", "http://h", "--token", "T", "run", "202611"], transport=t) == 0
    assert main(["--hub", "http://h", "status", "202611", "--detail", "--department",
                 "union"], transport=t) == 0
    assert main(["--hub", "http://h", "resend", "202611", "veterans"], transport=t) == 1
    assert seen[0][:3] == ("POST", "http://h/admin/warnings/runs", "Bearer T")
    assert json.loads(seen[0][3]) == {"month": "202611"}
    assert seen[1][1] == "http://h/admin/warnings/runs/202611?detail=true&department=union"
    assert json.loads(seen[2][3]) == {"department": "veterans", "only_unacknowledged": False}
    assert '"published": 0' in capsys.readouterr().out
