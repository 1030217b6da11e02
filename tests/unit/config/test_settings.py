"""load_settings: defaults, TOML file, environment, and ConfigError naming the bad setting."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from config.settings import ConfigError, HubSettings, PartnerConfig, load_settings
from retry.policy import RetryPolicy

REPO = Path(__file__).resolve().parents[3]
NO_FILE = "/nonexistent/hub.toml"  # as a keyword override: read nothing, raise nothing

PARTNERS_TOML = """
[partners.core]
protocol = "http-json"
endpoint = "http://core.example:8101"

[partners.tax]
protocol = "soap"
endpoint = "http://tax.example:8102/tax/ws"
timeout_s = 3.5

[partners.tax.policies.default]
max_attempts = 4

[partners.tax.policies."tax.employee.enroll"]
max_attempts = 6
max_age_s = 3600
inprocess_attempts = 1
delays_ms = [2000, 9000]
"""


def _file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "hub.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_defaults_without_a_file() -> None:
    s = load_settings(env={}, settings_file=NO_FILE)
    assert isinstance(s, HubSettings)
    assert s.namespace == "hub"
    assert s.prefetch == 64
    assert s.amqp_url.startswith("amqp://")
    assert s.database_url.startswith("sqlite+aiosqlite://")
    assert s.delay_tiers_ms == (1_000, 5_000, 30_000, 120_000, 600_000)
    assert set(s.partners) == {"core", "tax"}
    assert s.partner("tax").protocol == "soap"
    assert s.partner("tax").policy("tax.employee.enroll") == RetryPolicy()


def test_env_overrides_defaults() -> None:
    s = load_settings(env={"HUB_PREFETCH": "7", "HUB_NAMESPACE": "t1",
                           "HUB_DELAY_TIERS_MS": "[100, 200]"}, settings_file=NO_FILE)
    assert s.prefetch == 7
    assert s.namespace == "t1"
    assert s.delay_tiers_ms == (100, 200)


def test_env_over_the_repository_file() -> None:
    s = load_settings(env={"HUB_SETTINGS_FILE": str(REPO / "config/hub.toml"),
                           "HUB_PREFETCH": "7"})
    assert s.prefetch == 7
    # the repository file's policy for enrollments is read
    assert s.partner("tax").policy("tax.employee.enroll").max_age_s == 172800
    assert s.partner("core").policy("core.sync_status").max_attempts == 12


def test_env_overrides_a_value_set_in_the_file(tmp_path: Path) -> None:
    path = _file(tmp_path, "prefetch = 3\n" + PARTNERS_TOML)
    s = load_settings(env={"HUB_SETTINGS_FILE": path, "HUB_PREFETCH": "7"})
    assert s.prefetch == 7


def test_nested_env_overrides_the_file(tmp_path: Path) -> None:
    path = _file(tmp_path, PARTNERS_TOML)
    s = load_settings(env={"HUB_SETTINGS_FILE": path,
                           "HUB_PARTNERS__TAX__ENDPOINT": "http://env-tax/ws"})
    assert s.partners["tax"].endpoint == "http://env-tax/ws"


def test_file_value_applies_without_env(tmp_path: Path) -> None:
    path = _file(tmp_path, "prefetch = 3\n" + PARTNERS_TOML)
    assert load_settings(env={"HUB_SETTINGS_FILE": path}).prefetch == 3


def test_keyword_overrides_beat_everything(tmp_path: Path) -> None:
    path = _file(tmp_path, "prefetch = 3\n" + PARTNERS_TOML)
    s = load_settings(env={"HUB_SETTINGS_FILE": path, "HUB_PREFETCH": "7"}, prefetch=11)
    assert s.prefetch == 11


def test_partner_policies_are_read_from_the_file(tmp_path: Path) -> None:
    path = _file(tmp_path, PARTNERS_TOML)
    s = load_settings(env={"HUB_SETTINGS_FILE": path})
    assert s.settings_file == path
    tax = s.partner("tax")
    assert isinstance(tax, PartnerConfig)
    assert tax.endpoint == "http://tax.example:8102/tax/ws"
    assert tax.timeout_s == 3.5
    enroll = tax.policy("tax.employee.enroll")
    assert (enroll.max_attempts, enroll.max_age_s, enroll.inprocess_attempts,
            enroll.delays_ms) == (6, 3600, 1, (2000, 9000))
    # other types fall back to the partner's default, then to RetryPolicy()
    assert tax.policy("tax.feedback").max_attempts == 4
    assert s.partner("core").policy("core.sync_status") == RetryPolicy()


def test_url_shortcuts_replace_the_partner_endpoint(tmp_path: Path) -> None:
    path = _file(tmp_path, PARTNERS_TOML)
    s = load_settings(env={"HUB_SETTINGS_FILE": path, "HUB_TAX_URL": "http://tax-sim:9/ws"})
    assert s.partner("tax").endpoint == "http://tax-sim:9/ws"
    assert s.partner("core").endpoint == "http://core.example:8101"
    # the shortcut does not lose the partner's policies
    assert s.partner("tax").policy("tax.employee.enroll").max_attempts == 6


@pytest.mark.parametrize(("env", "named"), [
    ({"HUB_PREFETCH": "0"}, "prefetch"),
    ({"HUB_PREFETCH": "many"}, "prefetch"),
    ({"HUB_HTTP_PORT": "70000"}, "http_port"),
    ({"HUB_NAMESPACE": "Bad Name"}, "namespace"),
    ({"HUB_AMQP_URL": "http://x"}, "amqp_url"),
    ({"HUB_REDIS_URL": "http://x"}, "redis_url"),
    ({"HUB_DATABASE_URL": "sqlite:///x.db"}, "database_url"),
    ({"HUB_DELAY_TIERS_MS": "[5000, 1000]"}, "delay_tiers_ms"),
])
def test_bad_values_raise_config_error_naming_the_setting(env: dict[str, str],
                                                          named: str) -> None:
    with pytest.raises(ConfigError) as ei:
        load_settings(env=env, settings_file=NO_FILE)
    assert named in str(ei.value)


def test_unknown_key_in_the_file_is_named(tmp_path: Path) -> None:
    path = _file(tmp_path, "prefech = 3\n")
    with pytest.raises(ConfigError, match="prefech"):
        load_settings(env={"HUB_SETTINGS_FILE": path})


def test_a_missing_required_partner_is_named(tmp_path: Path) -> None:
    path = _file(tmp_path, '[partners.core]\nprotocol = "http-json"\nendpoint = "http://c"\n')
    with pytest.raises(ConfigError, match="partner 'tax' is required"):
        load_settings(env={"HUB_SETTINGS_FILE": path})


def test_bad_partner_policy_is_named(tmp_path: Path) -> None:
    path = _file(tmp_path, PARTNERS_TOML + "\n[partners.core.policies.default]\nmax_attempts = 0\n")
    with pytest.raises(ConfigError, match=r"partners\.core\.policies\.default\.max_attempts"):
        load_settings(env={"HUB_SETTINGS_FILE": path})


def test_missing_settings_file_named_by_env_raises(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="HUB_SETTINGS_FILE") as ei:
        load_settings(env={"HUB_SETTINGS_FILE": str(missing)})
    assert str(missing) in str(ei.value)


def test_broken_toml_raises_config_error_naming_the_file(tmp_path: Path) -> None:
    path = _file(tmp_path, "prefetch = = 3\n")
    with pytest.raises(ConfigError, match=r"hub\.toml"):
        load_settings(env={"HUB_SETTINGS_FILE": path})


def test_process_environment_is_restored() -> None:
    before = dict(os.environ)
    load_settings(env={"HUB_PREFETCH": "7"}, settings_file=NO_FILE)
    with pytest.raises(ConfigError):
        load_settings(env={"HUB_PREFETCH": "0"}, settings_file=NO_FILE)
    assert dict(os.environ) == before


def test_process_environment_is_not_read_when_env_is_given(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_PREFETCH", "0")  # would be invalid if read
    assert load_settings(env={}, settings_file=NO_FILE).prefetch == 64


def test_settings_are_frozen() -> None:
    s = load_settings(env={}, settings_file=NO_FILE)
    with pytest.raises(ValueError):
        s.prefetch = 5  # type: ignore[misc]


# -- item 15: settings that would misbehave at run time stop the start ------------------


def _refused(env: dict[str, str] | None = None, **overrides: object) -> str:
    with pytest.raises(ConfigError) as ei:
        load_settings(env=env or {}, settings_file=NO_FILE, **overrides)
    return str(ei.value)


@pytest.mark.parametrize(("tiers", "reason"), [
    ("[]", "needs at least one wait tier"),
    ("[0, 1000]", "every tier must be a positive number of ms, got 0"),
    ("[-500, 1000]", "every tier must be a positive number of ms, got -500"),
    ("[1000, 1000]", "must be strictly increasing"),
    ("[1000, 5000000000]", "over RabbitMQ's largest TTL"),
])
def test_empty_or_non_positive_delay_tiers_stop_the_start(tiers: str, reason: str) -> None:
    message = _refused({"HUB_DELAY_TIERS_MS": tiers})
    assert "setting delay_tiers_ms:" in message and reason in message


def test_empty_delay_tiers_in_the_file_stop_the_start(tmp_path: Path) -> None:
    path = _file(tmp_path, "delay_tiers_ms = []\n" + PARTNERS_TOML)
    with pytest.raises(ConfigError, match="setting delay_tiers_ms: needs at least one"):
        load_settings(env={"HUB_SETTINGS_FILE": path})


@pytest.mark.parametrize("level", ["VERBOSE", "warnings", "", "10"])
def test_an_unknown_log_level_stops_the_start(level: str) -> None:
    message = _refused({"HUB_LOG_LEVEL": level})
    assert "setting log_level:" in message and "unknown log level" in message


@pytest.mark.parametrize("level", ["debug", "Info", "WARNING", "error", "CRITICAL"])
def test_known_log_levels_are_accepted_in_any_case(level: str) -> None:
    assert load_settings(env={"HUB_LOG_LEVEL": level}, settings_file=NO_FILE).log_level == \
        level.upper()


@pytest.mark.parametrize(("env", "named", "reason"), [
    ({"HUB_PARTNERS__CORE__PROTOCOL": "http-json",
      "HUB_PARTNERS__CORE__ENDPOINT": "127.0.0.1:8101"},
     "partners.core.endpoint", "must start with http:// or https://"),
    ({"HUB_PARTNERS__CORE__PROTOCOL": "http-json",
      "HUB_PARTNERS__CORE__ENDPOINT": "http://"}, "partners.core.endpoint", "has no host"),
    ({"HUB_PARTNERS__TAX__PROTOCOL": "soap",
      "HUB_PARTNERS__TAX__ENDPOINT": "http://tax:99999/ws"},
     "partners.tax.endpoint", "Port out of range"),
    ({"HUB_PARTNERS__TAX__PROTOCOL": "soap",
      "HUB_PARTNERS__TAX__ENDPOINT": "http://tax .example/ws"},
     "partners.tax.endpoint", "contains white space"),
    ({"HUB_PARTNERS__TAX__PROTOCOL": "ftp",
      "HUB_PARTNERS__TAX__ENDPOINT": "http://tax.example/out"},
     "partners.tax.endpoint", "must start with ftp:// or ftps://"),
    ({"HUB_TAX_URL": "htp://tax.example/ws"}, "tax_url", "must start with http://"),
    ({"HUB_CORE_URL": "core.example"}, "core_url", "must start with http://"),
    ({"HUB_CALLBACK_BASE": "hub.example:8000"}, "callback_base", "must start with http://"),
])
def test_malformed_partner_urls_stop_the_start(env: dict[str, str], named: str,
                                               reason: str) -> None:
    message = _refused(env)
    assert f"setting {named}:" in message and reason in message


def test_a_malformed_partner_endpoint_in_the_file_is_named(tmp_path: Path) -> None:
    path = _file(tmp_path, PARTNERS_TOML.replace('"http://core.example:8101"',
                                                 '"core.example:8101"'))
    with pytest.raises(ConfigError, match=r"setting partners\.core\.endpoint: .*http://"):
        load_settings(env={"HUB_SETTINGS_FILE": path})


@pytest.mark.parametrize("url", ["not a url", "ftp://cb.example/x", "https://", "/relative"])
def test_a_malformed_channel_callback_url_stops_the_start(url: str) -> None:
    message = _refused({"HUB_CHANNELS__MY_NANJING__SECRET": "s",
                        "HUB_CHANNELS__MY_NANJING__CALLBACK_URL": url})
    assert "setting channels.my_nanjing.callback_url:" in message


def test_well_formed_urls_of_every_protocol_are_accepted() -> None:
    for protocol, url in [("ftp", "ftp://tax.example:2121/outbound"),
                          ("amqp", "amqps://user:pw@mq.example/vhost"),
                          ("rest", "https://[::1]:8443/api"), ("signed-json", "http://sj")]:
        assert PartnerConfig(protocol=protocol, endpoint=url).endpoint == url  # type: ignore[arg-type]


def test_an_inflight_lock_shorter_than_the_in_process_tries_stops_the_start(
        tmp_path: Path) -> None:
    """tax: 3.5 s × 1 attempt for enrollments, but 3.5 s × 2 (+ waits) for the others."""
    path = _file(tmp_path, "inflight_lock_s = 6\n" + PARTNERS_TOML)
    with pytest.raises(ConfigError) as ei:
        load_settings(env={"HUB_SETTINGS_FILE": path})
    message = str(ei.value)
    assert "setting inflight_lock_s: 6 s is shorter" in message
    assert "partners.tax.policies.default" in message
    assert "timeout_s 3.5 × inprocess_attempts 2" in message
    assert "partners.tax.policies.tax.employee.enroll" not in message  # 3.5 s fits in 6 s


def test_the_lock_check_covers_the_fallback_policy_of_types_without_one() -> None:
    slow = PartnerConfig(protocol="http-json", endpoint="http://core", timeout_s=90)
    message = _refused(partners={"core": slow, "tax": PartnerConfig(
        protocol="soap", endpoint="http://tax/ws", timeout_s=1)})
    assert "setting inflight_lock_s: 120 s is shorter" in message
    assert "partners.core.policies.(fallback)" in message and "partners.tax" not in message


def test_a_long_in_process_policy_needs_a_longer_lock() -> None:
    many = RetryPolicy(inprocess_attempts=10, inprocess_max_s=3.0)
    core = PartnerConfig(protocol="http-json", endpoint="http://core", timeout_s=10,
                         policies={"default": many})
    tax = PartnerConfig(protocol="soap", endpoint="http://tax/ws", timeout_s=1)
    partners = {"core": core, "tax": tax}
    message = _refused(partners=partners, inflight_lock_s=126)
    assert "partners.core.policies.default" in message and "= 127 s" in message
    s = load_settings(env={}, settings_file=NO_FILE, partners=partners, inflight_lock_s=127)
    assert s.inflight_lock_s == 127  # 10 × 10 s + 9 × 3 s waits = 127 s: just enough


def test_every_problem_is_listed_not_only_the_first() -> None:
    message = _refused({"HUB_LOG_LEVEL": "loud", "HUB_DELAY_TIERS_MS": "[]",
                        "HUB_TAX_URL": "tax"})
    for named in ("log_level", "delay_tiers_ms", "tax_url"):
        assert f"setting {named}:" in message
