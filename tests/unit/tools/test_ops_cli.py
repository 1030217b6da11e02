"""The ops command line against the admin API in process (httpx ASGI transport)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import httpx
import pytest

from tests.support.ops import BY_ROLE, ID, Admin, letter
from tools.ops_cli import run, when


async def _cli(admin: Admin, *argv: str, role: str = "operations") -> tuple[int, str]:
    out = io.StringIO()
    rc = await run(["--url", "http://hub", "--token", BY_ROLE[role], *argv],
                   transport=httpx.ASGITransport(app=admin.app), out=out)
    return rc, out.getvalue()


async def test_list_groups_show_retry_archive_and_audit(admin: Admin) -> None:
    a = await admin.db.store.add(letter(1))
    b = await admin.db.store.add(letter(2, reason_code="VALIDATION", reason="payload.x: bad"))
    rc, text = await _cli(admin, "dlq", "list", "--reason", "UNAVAILABLE", "--since",
                          "2026-11-01")
    assert rc == 0 and f"{a:>6}" in text and "1 of 1" in text and ID not in text
    rc, text = await _cli(admin, "dlq", "groups")
    assert rc == 0 and "UNAVAILABLE" in text and "VALIDATION" in text
    rc, text = await _cli(admin, "dlq", "show", str(a))
    assert rc == 0 and json.loads(text)["id"] == a and ID not in text
    rc, text = await _cli(admin, "dlq", "retry", "--ids", str(a), "--reason", "tax is back")
    assert rc == 0 and "retried 1, skipped 0, failed 0, remaining 0" in text
    rc, text = await _cli(admin, "dlq", "archive", "--group", "VALIDATION", "--reason", "junk")
    assert rc == 0 and "archived 1" in text
    assert (await admin.db.store.get(b)).status == "archived"  # type: ignore[union-attr]
    rc, text = await _cli(admin, "audit", "--action", "dead_letter.retry")
    assert rc == 0 and "olga (operations)  dead_letter.retry" in text
    rc, text = await _cli(admin, "--json", "audit", "--since", "1h")
    assert rc == 0 and len(json.loads(text)) == 3  # retry, archive, and the view


async def test_retry_all_needs_confirmation_and_refusals_exit_1(
        admin: Admin, capsys: pytest.CaptureFixture[str]) -> None:
    await admin.db.store.add(letter(1))
    rc, _ = await _cli(admin, "dlq", "retry", "--all", "--reason", "x")
    assert rc == 1 and "--yes" in capsys.readouterr().err
    rc, _ = await _cli(admin, "dlq", "retry", "--all", "--yes", "--reason", "x",
                       role="caseworker")
    assert rc == 1 and "HTTP 403" in capsys.readouterr().err
    rc, text = await _cli(admin, "dlq", "retry", "--all", "--yes", "--rate", "500",
                          "--reason", "x")
    assert rc == 0 and "retried 1" in text
    rc, _ = await _cli(admin, "dlq", "show", "999")
    assert rc == 1 and "HTTP 404" in capsys.readouterr().err


async def test_usage_errors(admin: Admin, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("HUB_ADMIN_TOKEN", raising=False)
    assert await run(["dlq", "groups"]) == 2
    assert "HUB_ADMIN_TOKEN" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        await run(["dlq", "retry", "--ids", "1,x", "--reason", "r"])
    with pytest.raises(SystemExit):
        await run(["dlq", "retry", "--ids", "1", "--group", "X", "--reason", "r"])


def test_times_relative_and_absolute() -> None:
    assert when("2026-11-26T08:00") == "2026-11-26T08:00:00+00:00"
    assert when("2026-11-26T16:00+08:00") == "2026-11-26T16:00:00+08:00"
    ago = datetime.fromisoformat(when("2h"))
    assert 7100 < (datetime.now(UTC) - ago).total_seconds() < 7300
