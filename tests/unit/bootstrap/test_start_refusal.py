"""A hub that is not explicitly in development mode refuses to START with a default
secret: ``build_hub`` and ``python main.py run`` (before migrating or connecting),
each secret named with its environment variable. Loading the settings alone does not
refuse (a test or a tool may read them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bootstrap import build_hub
from config.settings import ConfigError, env_name, load_settings

ROOT = Path(__file__).resolve().parents[3]
SECRETS = ("channels.my_nanjing.secret", "channels.gov_office.secret",
           "channels.online_hall.secret", "channels.hrss.secret", "returnfiles.password",
           "partners.core.secret", "partners.tax.secret", "subject_hash_key",
           "console_secret", "metrics_token")


def _own_secrets() -> dict[str, str]:
    return {env_name(name): f"own-{name}-0123456789" for name in SECRETS}


def _run(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    base |= {"HUB_SETTINGS_FILE": str(ROOT / "config/hub.toml"),
             "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
             "HUB_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/",  # nothing may be reached
             "HUB_REDIS_URL": "redis://127.0.0.1:1/0", "HUB_HTTP_PORT": "1"}
    return subprocess.run([sys.executable, "main.py", "run"], cwd=ROOT, env=base | env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("mode", [{}, {"HUB_ENV": "production"}])
def test_main_run_refuses_default_secrets_naming_each_one(tmp_path: Path,
                                                          mode: dict[str, str]) -> None:
    proc = _run(tmp_path, mode)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("hub: cannot start:")
    for name in SECRETS:
        assert f"setting {name} ({env_name(name)})" in proc.stderr
    assert not (tmp_path / "hub.db").exists()  # refused before migrating anything


def test_main_run_refuses_the_one_secret_left_at_its_default(tmp_path: Path) -> None:
    env = _own_secrets() | {"HUB_ENV": "production"}
    del env["HUB_RETURNFILES__PASSWORD"]
    proc = _run(tmp_path, env)
    assert proc.returncode == 2
    assert "setting returnfiles.password (HUB_RETURNFILES__PASSWORD)" in proc.stderr
    assert "channels." not in proc.stderr and "partners." not in proc.stderr


def test_main_run_refuses_a_development_admin_token_in_production(tmp_path: Path) -> None:
    env = _own_secrets() | {"HUB_ENV": "production",
                            "HUB_ADMIN_TOKENS": "dev-admin:root:admin"}
    proc = _run(tmp_path, env)
    assert proc.returncode == 2, proc.stderr
    assert "hub: cannot start: setting admin_tokens (HUB_ADMIN_TOKENS)" in proc.stderr


def test_loading_the_settings_does_not_refuse() -> None:
    assert load_settings(env={}).env == "production"


async def test_build_hub_refuses_a_production_hub_with_default_secrets(tmp_path: Path) -> None:
    s = load_settings(env={"HUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'h.db'}"})
    with pytest.raises(ConfigError) as exc:
        build_hub(s)
    for name in SECRETS:
        assert f"setting {name} ({env_name(name)})" in str(exc.value)


async def test_build_hub_builds_a_development_hub_and_a_production_one_with_own_secrets(
        tmp_path: Path) -> None:
    db = {"HUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'h.db'}"}
    for env in ({"HUB_ENV": "development"}, {"HUB_ENV": "production"} | _own_secrets()):
        hub = build_hub(load_settings(env=db | env))  # wires objects, connects nothing
        try:
            assert {"/health", "/health/live", "/health/ready"} <= \
                set(hub.api.openapi()["paths"])
        finally:
            await hub.stop()
