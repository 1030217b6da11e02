"""Development mode is an explicit choice (``HUB_ENV=development``); production is the
default, and a production hub refuses to start while any secret still has its
development default, naming each setting and its environment variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from config.settings import (
    ChannelConfig,
    ConfigError,
    PartnerConfig,
    default_secrets,
    env_name,
    load_settings,
    refuse_default_secrets,
)

REPO = Path(__file__).resolve().parents[3]
NO_FILE = "/nonexistent/hub.toml"
HUB_TOML = str(REPO / "config/hub.toml")  # partners from a file: env secrets merge into them
DEV_SECRETS = {"channels.my_nanjing.secret", "channels.gov_office.secret",
               "channels.online_hall.secret", "channels.hrss.secret", "returnfiles.password",
               "partners.core.secret", "partners.tax.secret", "subject_hash_key",
               "console_secret", "metrics_token"}


def _production_env() -> dict[str, str]:
    """Every secret set to a value of this deployment's own."""
    env = {env_name(name): f"own-{name}-0123456789" for name in DEV_SECRETS}
    return env | {"HUB_ENV": "production"}


def test_production_is_the_default_and_development_is_chosen_explicitly() -> None:
    assert load_settings(env={}, settings_file=NO_FILE).env == "production"
    assert load_settings(env={"HUB_ENV": "development"}, settings_file=NO_FILE).env == \
        "development"
    with pytest.raises(ConfigError, match="setting env:"):
        load_settings(env={"HUB_ENV": "dev"}, settings_file=NO_FILE)


@pytest.mark.parametrize("file", [NO_FILE, str(REPO / "config/hub.toml"),
                                  str(REPO / "config/compose.toml")])
def test_every_secret_at_its_development_default_is_found(file: str) -> None:
    s = load_settings(env={}, settings_file=file)
    assert set(default_secrets(s)) >= DEV_SECRETS
    assert "admin_tokens" not in default_secrets(s)  # empty: no admin access, nothing given away


def test_a_production_hub_with_default_secrets_is_refused_naming_each_one() -> None:
    s = load_settings(env={}, settings_file=NO_FILE)
    with pytest.raises(ConfigError) as exc:
        refuse_default_secrets(s)
    message = str(exc.value)
    for name in DEV_SECRETS:
        assert f"setting {name} ({env_name(name)})" in message
    assert "HUB_CHANNELS__MY_NANJING__SECRET" in message and "HUB_ENV=development" in message


def test_a_development_hub_may_keep_the_development_secrets() -> None:
    refuse_default_secrets(load_settings(env={"HUB_ENV": "development"}, settings_file=NO_FILE))


def test_a_production_hub_with_its_own_secrets_starts() -> None:
    for file in (HUB_TOML, str(REPO / "config/compose.toml")):
        s = load_settings(env=_production_env(), settings_file=file)
        assert default_secrets(s) == []
        refuse_default_secrets(s)


def test_one_secret_left_at_its_default_is_enough_to_refuse() -> None:
    env = _production_env()
    del env["HUB_RETURNFILES__PASSWORD"]
    s = load_settings(env=env, settings_file=HUB_TOML)
    with pytest.raises(ConfigError, match=r"returnfiles\.password") as exc:
        refuse_default_secrets(s)
    assert "channels." not in str(exc.value)


def test_a_development_value_copied_to_another_setting_is_still_a_default() -> None:
    env = _production_env() | {"HUB_CHANNELS__HRSS__SECRET": "dev-my_nanjing-secret",
                               "HUB_RETURNFILES__PASSWORD": "dev-tax-secret"}
    s = load_settings(env=env, settings_file=HUB_TOML)
    assert default_secrets(s) == ["channels.hrss.secret", "returnfiles.password"]


def test_the_check_is_generic_over_every_secret_setting() -> None:
    """A partner or channel added by configuration, with a development value, is found
    too: the check walks every SecretStr, it keeps no list of names."""
    s = load_settings(env=_production_env(), settings_file=HUB_TOML)
    extra_partner = PartnerConfig(protocol="http-json", endpoint="http://x.example",
                                  secret=SecretStr("dev-core-secret"))
    extra_channel = ChannelConfig(secret=SecretStr("hub-secret"))
    s = s.model_copy(update={"partners": {**s.partners, "pension": extra_partner},
                             "channels": {**s.channels, "kiosk": extra_channel}})
    assert default_secrets(s) == ["partners.pension.secret", "channels.kiosk.secret"]
