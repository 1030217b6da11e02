"""Bearer-token authentication and roles: 401 without a valid token, 403 outside the
role (logged and audited), 200 inside it; token hashing and HUB_ADMIN_TOKENS parsing."""

from __future__ import annotations

import hashlib
import logging

import pytest

from api.auth import (
    DEV_TOKENS,
    LOOPBACK,
    Authenticator,
    Principal,
    dev_principals,
    hash_token,
    load_principals,
    principals_from_env,
)
from tests.support.ops import PRINCIPALS, Admin, bearer

ALL = ("admin", "operations", "caseworker", "tester", "readonly")


def test_tokens_are_kept_as_sha256_hex_only() -> None:
    assert hash_token("abc") == hashlib.sha256(b"abc").hexdigest()
    got = principals_from_env("token1:alice:operations,token2:bob:caseworker")
    assert got == {hash_token("token1"): Principal("alice", "operations"),
                   hash_token("token2"): Principal("bob", "caseworker")}
    assert not any("token" in k for k in got)


def test_env_parsing_takes_spaces_colons_in_tokens_and_prehashed_tokens() -> None:
    digest = hash_token("from-a-vault")
    got = principals_from_env(f" a:b:c-long-token :carol:admin , sha256:{digest.upper()}:dan:"
                              "readonly,, ")
    assert got == {hash_token("a:b:c-long-token"): Principal("carol", "admin"),
                   digest: Principal("dan", "readonly")}
    assert Authenticator(got, None).authenticate("from-a-vault") == Principal("dan", "readonly")
    assert principals_from_env("") == {}


@pytest.mark.parametrize(("value", "message"), [
    ("token1:alice", "expected token:user:role"),
    ("token1:alice:root", "unknown role 'root'"),
    (":alice:admin", "expected token:user:role"),
    ("tok-0123456789abcdef:a:admin,tok-0123456789abcdef:b:readonly", "given twice"),
])
def test_bad_env_entries_are_named(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        principals_from_env(value)


def test_short_tokens_are_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "hub.auth"):
        principals_from_env("short:alice:admin")
    assert "shorter than" in caplog.text and "short:" not in caplog.text


def test_dev_tokens_only_in_development_mode_and_only_when_nothing_is_configured() -> None:
    # Before: chosen by the bind address (loopback: dev tokens). Now by the explicit mode.
    assert load_principals("", development=True, http_host="127.0.0.1") == dev_principals()
    assert set(dev_principals().values()) == {Principal(u, r) for u, r in DEV_TOKENS.values()}
    assert load_principals(None, development=False, http_host="0.0.0.0") == {}
    configured = load_principals("tok-0123456789abcdef:a:admin", development=True,
                                 http_host="127.0.0.1")
    assert list(configured.values()) == [Principal("a", "admin")]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "0.0.0.0", "10.1.2.3"])
def test_the_bind_address_never_decides_the_dev_tokens(host: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    assert load_principals("", development=False, http_host=host) == {}
    with caplog.at_level(logging.WARNING, "hub.auth"):
        assert load_principals("", development=True, http_host=host) == dev_principals()
    assert "development tokens" in caplog.text
    assert ("from the network" in caplog.text) == (host not in LOOPBACK)


def test_a_configured_development_token_is_refused_outside_development_mode() -> None:
    value = "dev-ops:olga:operations,tok-0123456789abcdef:a:admin"
    with pytest.raises(ValueError, match=r"development token .* for olga"):
        load_principals(value, development=False)
    assert len(load_principals(value, development=True)) == 2


async def test_no_token_or_a_bad_one_is_401(admin: Admin) -> None:
    r = await admin.client.get("/admin/dead-letters")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = await admin.client.get("/admin/dead-letters", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    r = await admin.client.get("/admin/dead-letters", headers={"Authorization": "Basic eDp5"})
    assert r.status_code == 401
    assert await admin.db.audit.list() == []  # nobody to attribute it to: logged only


@pytest.mark.parametrize("role", ALL)
async def test_every_role_may_read(admin: Admin, role: str) -> None:
    for path in ("/admin/dead-letters", "/admin/dead-letters/groups", "/admin/audit"):
        r = await admin.client.get(path, headers=bearer(role))
        assert r.status_code == 200, (path, role, r.text)


@pytest.mark.parametrize(("role", "retry", "edit"), [
    ("admin", 200, 404), ("operations", 200, 403), ("caseworker", 403, 403),
    ("tester", 403, 403), ("readonly", 403, 403),
])
async def test_actions_by_role(admin: Admin, role: str, retry: int, edit: int) -> None:
    body = {"ids": [1], "reason": "role check"}
    r = await admin.client.post("/admin/dead-letters/retry", json=body, headers=bearer(role))
    assert r.status_code == retry, r.text
    r = await admin.client.post("/admin/dead-letters/archive", json=body, headers=bearer(role))
    assert r.status_code == retry, r.text
    r = await admin.client.post("/admin/dead-letters/1/edit-retry", headers=bearer(role),
                                json={"patch": {"name": "x"}, "reason": "role check"})
    assert r.status_code == edit, r.text  # 404: admin may, but there is no letter 1


async def test_forbidden_is_logged_and_audited(admin: Admin,
                                               caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "hub.auth"):
        r = await admin.client.post("/admin/dead-letters/retry", headers=bearer("caseworker"),
                                    json={"all": True, "reason": "x"})
    assert r.status_code == 403 and "caseworker" in r.json()["detail"]
    assert "forbidden: carl (caseworker) POST /admin/dead-letters/retry" in caplog.text
    [row] = await admin.db.audit.list(outcome="forbidden")
    assert (row.actor, row.role, row.action, row.target) == \
        ("carl", "caseworker", "POST /admin/dead-letters/retry", "/admin/dead-letters/retry")
    assert row.detail == {"required": ["admin", "operations"]}
    r = await admin.client.get("/admin/audit", params={"outcome": "forbidden"},
                               headers=bearer("readonly"))
    assert [e["actor"] for e in r.json()] == ["carl"]


def test_openapi_documents_bearer_auth_and_models(admin: Admin) -> None:
    spec = admin.app.openapi()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    op = spec["paths"]["/admin/dead-letters/retry"]["post"]
    assert op["summary"] and {"401", "403"} <= set(op["responses"])
    assert "ActionResult" in str(op["responses"]["200"])
    assert PRINCIPALS  # the fixture's principals are hashed, never plain


async def test_one_authenticator_can_serve_several_routers(admin: Admin) -> None:
    """app.py builds one Authenticator and hands it to every admin router."""
    import httpx
    from fastapi import Depends, FastAPI

    from api.admin import admin_router
    from tests.support.ops import RecordingIdem, fake_deps

    auth = Authenticator(PRINCIPALS, admin.db.audit)
    app = FastAPI()
    app.include_router(admin_router(fake_deps(RecordingIdem()), admin.db.store, admin.db.audit,
                                    auth))

    caseworker = Depends(auth.require("caseworker"))

    @app.get("/admin/other")
    async def other(who: Principal = caseworker) -> dict[str, str]:
        return {"user": who.user, "role": who.role}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://hub") as client:
        assert (await client.get("/admin/dead-letters", headers=bearer("tester"))).status_code \
            == 200
        r = await client.get("/admin/other", headers=bearer("caseworker"))
        assert r.json() == {"user": "carl", "role": "caseworker"}
        assert (await client.get("/admin/other", headers=bearer("operations"))).status_code \
            == 403
