"""``docker compose up`` gives a hub that starts and whose admin API answers: the hub's
settings built from docker-compose.yml's environment and config/compose.toml pass
``refuse_default_secrets`` and ``load_principals`` (roles of ``api.auth``), ``build_hub``
wires them, every partner the hub calls is on a port the ``simulators`` service serves
(``simulators.run.run_simulators`` with its servers recorded, not bound) and publishes.
Docker itself does not run here; ``make compose-config`` validates the file."""

from __future__ import annotations

import asyncio
import contextlib
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from api.auth import ROLES, load_principals
from config.settings import HubSettings, default_secrets, load_settings, refuse_default_secrets

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[3]
CALLERS_ONLY = {"drug_mall"}
"""Partners that only call the hub (the mall): their endpoint is never called."""
KEYED = {"prescription"}
"""Partners authenticated by keys of their own section (SM2/SM4, ``[prescription]``), not by
a partner secret."""


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
    return data


def _env(service: str) -> dict[str, str]:
    env = _compose()["services"][service]["environment"]
    return {k: str(v) for k, v in env.items()}


def _settings(service: str, tmp_path: Path, **extra: str) -> HubSettings:
    env = _env(service) | extra
    env["HUB_SETTINGS_FILE"] = str(ROOT / env["HUB_SETTINGS_FILE"])
    return load_settings(env=env)


def test_the_compose_hub_passes_the_production_start_checks(tmp_path: Path) -> None:
    env = _env("hub")
    assert env["HUB_ENV"] == "production"
    s = _settings("hub", tmp_path)
    assert default_secrets(s) == []
    refuse_default_secrets(s)  # raises naming each secret left at its default
    for name, p in s.partners.items():
        assert name in KEYED or p.secret.get_secret_value(), \
            f"partners.{name}.secret is not set in compose"
    principals = load_principals(s.admin_tokens.get_secret_value(), development=False,
                                 http_host="0.0.0.0")
    roles = {p.role for p in principals.values()}
    assert roles <= set(ROLES)
    assert {"admin", "operations", "caseworker", "readonly"} <= roles


async def test_build_hub_wires_the_compose_hub(tmp_path: Path) -> None:
    from bootstrap import build_hub

    s = _settings("hub", tmp_path,
                  HUB_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    hub = build_hub(s)  # wires objects, connects nothing
    try:
        assert "/admin/dead-letters" in hub.api.openapi()["paths"]
        ticks = {name for name, _, _ in hub.tickers}  # the periodic work of the process
        assert {"union-clock", "recon-daily", "transfer-pull"} <= ticks
    finally:
        await hub.stop()


def test_compose_toml_has_every_partner_of_hub_toml_on_the_simulators() -> None:
    hub = tomllib.loads((ROOT / "config/hub.toml").read_text("utf-8"))
    compose = tomllib.loads((ROOT / "config/compose.toml").read_text("utf-8"))
    assert set(hub["partners"]) <= set(compose["partners"])
    for name, p in compose["partners"].items():
        assert urlsplit(p["endpoint"]).hostname == "simulators", name
    for name, d in compose.get("warnings", {}).get("departments", {}).items():
        assert urlsplit(d["endpoint"]).hostname == "simulators", name
    assert compose["returnfiles"]["host"] == "simulators"


async def _served_ports(s: HubSettings, monkeypatch: pytest.MonkeyPatch) -> set[int]:
    """The ports ``main.py simulate`` serves with these settings, recorded, not bound."""
    import simulators.prescription
    import simulators.run

    ports: set[int] = set()

    @contextlib.asynccontextmanager
    async def record(app: Any, *, host: str = "127.0.0.1", port: int = 0,
                     **_: Any) -> AsyncIterator[str]:
        ports.add(port)
        yield f"http://{host}:{port}"

    class Ftp:
        def __init__(self, root: Path, *, host: str, port: int, user: str,
                     password: str) -> None:
            self.port = port
            ports.add(port)

        def __enter__(self) -> Ftp:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def drop_file(self, *a: Any, **k: Any) -> None:
            return None

    monkeypatch.setattr(simulators.run, "serve_app", record)
    monkeypatch.setattr(simulators.prescription, "serve_app", record)
    monkeypatch.setattr(simulators.run, "TaxFtpSimulator", Ftp)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(simulators.run.run_simulators(s), timeout=2.0)
    return ports


async def test_every_partner_is_on_a_port_the_simulators_serve_and_publish(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = _settings("hub", tmp_path)
    served = await _served_ports(_settings("simulators", tmp_path), monkeypatch)
    capsys.readouterr()
    called = {name: urlsplit(hub.partner(name).endpoint) for name in hub.partners
              if name not in CALLERS_ONLY}
    called |= {f"warnings.{n}": urlsplit(d.endpoint)
               for n, d in hub.warnings.departments.items()}
    called |= {f"channels.{n}": urlsplit(c.callback_url) for n, c in hub.channels.items()
               if c.callback_url}
    for name, url in called.items():
        assert url.hostname == "simulators", name
        assert url.port in served, f"{name}: port {url.port} is not served by simulate"
    assert hub.returnfiles.host == "simulators" and hub.returnfiles.port in served
    published = {int(p.split(":")[-2]) for p in
                 _compose()["services"]["simulators"]["ports"]}
    assert served <= published, f"served but not published: {served - published}"
    assert hub.sim_control_port in served


def test_restart_policies_and_the_reports_volume() -> None:
    services = _compose()["services"]
    for name in ("hub", "simulators"):
        assert services[name]["restart"] == "unless-stopped"
    assert any(str(v).endswith(":/app/.run/reports") or "reports" in str(v)
               for v in services["hub"].get("volumes", []))
    assert "reports" in _compose()["volumes"]
