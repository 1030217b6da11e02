"""Each partner has its own secret (``partners.<name>.secret``): development defaults like
the channels', from the environment in a deployment, never shown in a dump."""

from __future__ import annotations

from pathlib import Path

from config.settings import load_settings

TOML = Path(__file__).resolve().parents[3] / "config" / "hub.toml"


def test_partners_have_development_secrets_by_default() -> None:
    for s in (load_settings(env={}), load_settings(env={}, settings_file="/nonexistent.toml")):
        # only core and tax have development secrets; partners added in config/hub.toml
        # (e.g. trade_union, F12) have none until the environment gives one
        assert {n: p.secret.get_secret_value() for n, p in s.partners.items()} == {
            "core": "dev-core-secret", "tax": "dev-tax-secret"} | {
            n: "" for n in s.partners if n not in ("core", "tax")}


def test_a_partner_secret_comes_from_the_environment() -> None:
    s = load_settings(env={"HUB_SETTINGS_FILE": str(TOML),
                           "HUB_PARTNERS__CORE__SECRET": "core-from-env-0123"})
    assert s.partners["core"].secret.get_secret_value() == "core-from-env-0123"
    assert s.partners["core"].endpoint == "http://127.0.0.1:8101"  # the file's, merged
    assert s.partners["tax"].secret.get_secret_value() == "dev-tax-secret"
    assert "core-from-env-0123" not in repr(s) and "core-from-env-0123" not in str(
        s.model_dump())


def test_a_partner_without_a_default_gets_no_secret(tmp_path: Path) -> None:
    toml = tmp_path / "hub.toml"
    toml.write_text(TOML.read_text(encoding="utf-8") + '\n[partners.not_yet_a_partner]\n'
                    'protocol = "http-json"\nendpoint = "http://127.0.0.1:9"\n',
                    encoding="utf-8")
    s = load_settings(env={"HUB_SETTINGS_FILE": str(toml)})
    assert s.partners["not_yet_a_partner"].secret.get_secret_value() == ""  # all refused
