"""One settings object for the hub: environment variables over a TOML file over defaults.

Nothing reads settings at import time: ``load_settings()`` is called by
``main.py`` and the result is passed down. A wrong or missing setting stops
the start with ``ConfigError`` naming the setting and what is wrong.

Checked at load, besides each field's type and range: delay tiers (at least one,
each positive and within RabbitMQ's TTL limit, strictly increasing), the log level
(a name ``logging`` knows), every URL the hub calls or hands out (partner endpoints
by protocol, the ``core_url``/``tax_url`` shortcuts, ``callback_base``, channel
callback URLs), and that the in-flight lock outlasts the longest in-process try of
every partner policy (``_lock_covers``).

Checked at start, not at load: a hub not explicitly in development mode
(``env``, ``HUB_ENV``; production is the default) refuses to start while any
secret still has its development default (``refuse_default_secrets``).
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from config.drugs import DrugSettings
from config.prescription import PrescriptionSettings
from config.transfer import TransferSettings
from config.union import UnionSettings
from config.voucher import VoucherSettings
from config.warnings import WarningSettings
from contracts.channels import CHANNEL_NAMES, CollectionPeriods
from retry.policy import RetryPolicy

__all__ = ["ChannelConfig", "ConfigError", "DifficultyFileSettings", "HubSettings",
           "PartnerConfig", "ReturnFileSettings", "default_secrets",
           "development_partner_secrets", "env_name", "load_settings",
           "refuse_default_secrets"]

Protocol = Literal["http-json", "soap", "ftp", "rest", "signed-json", "amqp"]

_SCHEMES: dict[str, tuple[str, ...]] = {
    "http-json": ("http", "https"), "soap": ("http", "https"), "rest": ("http", "https"),
    "signed-json": ("http", "https"), "ftp": ("ftp", "ftps"), "amqp": ("amqp", "amqps"),
}
_HTTP = ("http", "https")
MAX_TTL_MS = 2**32 - 1
"""RabbitMQ's largest ``x-message-ttl``: a longer wait tier cannot be declared."""


def check_url(value: str, schemes: tuple[str, ...]) -> str:
    """``value`` as an absolute URL with one of ``schemes``, a host and a valid port."""
    if value != value.strip() or any(c.isspace() for c in value):
        raise ValueError(f"{value!r} is not a URL: it contains white space")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - parsing the port raises on a bad one
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid URL: {exc}") from None
    if parts.scheme not in schemes:
        raise ValueError(f"{value!r} must start with " + " or ".join(f"{s}://" for s in schemes))
    if not parts.hostname:
        raise ValueError(f"{value!r} has no host")
    return value


class ConfigError(Exception):
    """Raised at start-up; the message names each bad setting."""


class PartnerConfig(BaseModel):
    """How to reach one partner and how to retry each of its message types."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    protocol: Protocol
    endpoint: str = Field(min_length=1)
    credentials_ref: str | None = Field(
        default=None, description="name of the env var / secret holding credentials")
    secret: SecretStr = Field(
        default=SecretStr(""), description="HMAC key the partner signs its calls to the hub "
        "with (contracts/signing.py; HUB_PARTNERS__<NAME>__SECRET); empty: the development "
        "default of core and tax (_default_partners), else every call is refused")
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    policies: dict[str, RetryPolicy] = Field(default_factory=dict)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str, info: ValidationInfo) -> str:
        protocol = info.data.get("protocol")
        return check_url(v, _SCHEMES[protocol]) if protocol in _SCHEMES else v

    def policy(self, message_type: str) -> RetryPolicy:
        return self.policies.get(message_type) or self.policies.get("default") or RetryPolicy()


class ChannelConfig(BaseModel):
    """A citizen channel (F1): how it authenticates, where its results go, what it may submit.

    ``auth`` ``hmac-sha256``: the channel signs the canonical request
    (``contracts.signing``) with ``secret``; ``api-key``: it sends ``secret`` as
    ``X-Api-Key``. An
    empty ``types`` means every type the channel has in ``contracts.channels``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    auth: Literal["hmac-sha256", "api-key"] = "hmac-sha256"
    secret: SecretStr = Field(description="HMAC key or API key (from the environment)")
    callback_url: str | None = Field(default=None, description="where results are pushed")
    types: tuple[str, ...] = ()
    max_skew_s: int = Field(default=300, ge=5, le=3600, description="timestamp window")
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    policy: RetryPolicy = Field(default_factory=RetryPolicy,
                                description="how the result push to the channel is retried")

    @field_validator("callback_url")
    @classmethod
    def _callback(cls, v: str | None) -> str | None:
        return None if v is None else check_url(v, _HTTP)


class ReturnFileSettings(BaseModel):
    """F5: where tax drops return files (回盘文件) and how often the hub looks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(default=True, description="poll in ``main.py run``")
    host: str = "127.0.0.1"
    port: int = Field(default=2121, ge=1, le=65535)
    user: str = "hub"
    password: SecretStr = Field(default=SecretStr("hub-secret"),
                                description="from HUB_RETURNFILES__PASSWORD in production")
    root: str = "/outbound"
    poll_s: float = Field(default=60.0, gt=0)
    spool_dir: str = ".run/spool/returnfiles"
    chunk_size: int = Field(default=5000, ge=100)
    batch_size: int = Field(default=1000, ge=1, le=50_000, description="records per 到账 batch")
    timeout_s: float = Field(default=10.0, gt=0)


class DifficultyFileSettings(BaseModel):
    """F7 status back by file (seed 1532): a list a department sent as a file gets a status
    file back (``services.difficulty_files``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dir: str = Field(default=".run/difficulty", description="the imported files and the "
                     "status files produced, under <dir>/<namespace>/<list id>/")
    drops: dict[str, str] = Field(default_factory=dict, description="department -> a folder "
                                  "the status file is also written to once every row is "
                                  "settled (a share the department collects from)")
    check_s: float = Field(default=60.0, gt=0, le=86400,
                           description="how often the hub looks for lists just settled")


_DEVELOPMENT_PARTNERS = ("assistance", "sunshine", "trade_union", "difficulty_civil_affairs",
                         "difficulty_trade_union", "difficulty_veterans",
                         "difficulty_agriculture", "transfer",
                         "erp_finance",  # F10 用友 finance
                         "drug_mall", "pharmacy_erp", "supervision",  # F11 线上购药
                         "core_voucher", "voucher_library", "medtax", "medins")  # F13

_RECON_DEVELOPMENT_PARTNERS = ("institutions", "core_ledger", "mobile_payment",
                               "inst_h32010200001", "inst_h32010600002",
                               "inst_h32011500003")  # F14 对账 (contracts/INSTITUTION_RECON.md)
_INSURER_DEVELOPMENT_PARTNERS = ("insurer",)  # F15 大病保险 (contracts/SERIOUS_ILLNESS.md)


def development_partner_secrets() -> dict[str, SecretStr]:
    """The development secrets of the F7/F12 partners (``dev-<partner>-secret``): used only
    in development mode (``HubSettings._development_partner_secrets``); a production hub
    given one of them refuses to start (``default_secrets`` knows them)."""
    return {name: SecretStr(f"dev-{name}-secret")
            for name in (*_DEVELOPMENT_PARTNERS, *_RECON_DEVELOPMENT_PARTNERS,
                         *_INSURER_DEVELOPMENT_PARTNERS)}


def _default_channels() -> dict[str, ChannelConfig]:
    """Development defaults: loopback callbacks to the channel simulator, well-known secrets."""
    return {name: ChannelConfig(secret=SecretStr(f"dev-{name}-secret"),
                                callback_url=f"http://127.0.0.1:8103/channels/{name}/callback")
            for name in CHANNEL_NAMES}


def _default_partners() -> dict[str, PartnerConfig]:
    return {
        "core": PartnerConfig(protocol="http-json", endpoint="http://127.0.0.1:8101",
                              timeout_s=5.0, secret=SecretStr("dev-core-secret")),
        "tax": PartnerConfig(protocol="soap", endpoint="http://127.0.0.1:8102/tax/ws",
                             timeout_s=5.0, secret=SecretStr("dev-tax-secret")),
    }


class HubSettings(BaseSettings):
    """Everything the hub needs to start. Env prefix ``HUB_``; nested with ``__``."""

    model_config = SettingsConfigDict(env_prefix="HUB_", env_nested_delimiter="__",
                                      extra="forbid", frozen=True)

    namespace: str = Field(default="hub", pattern=r"^[a-z][a-z0-9_-]{0,30}$",
                           description="prefix of every exchange, queue and Redis key")
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    amqp_failover_urls: tuple[str, ...] = Field(
        default=(), description="other nodes of a RabbitMQ cluster (JSON list in "
        "HUB_AMQP_FAILOVER_URLS): the hub's broker client takes the first node that "
        "answers, amqp_url first (broker.failover)")
    redis_url: str = "redis://127.0.0.1:6379/0"
    database_url: str = "sqlite+aiosqlite:///./.run/hub.db"
    auto_migrate: bool = Field(default=True, description="run alembic upgrade at start")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    callback_base: str = "http://127.0.0.1:8000"
    core_url: str | None = Field(default=None, description="shortcut for partners.core.endpoint")
    tax_url: str | None = Field(default=None, description="shortcut for partners.tax.endpoint")
    sim_core_port: int = Field(default=8101, ge=1, le=65535)
    sim_tax_port: int = Field(default=8102, ge=1, le=65535)
    prefetch: int = Field(default=64, ge=1, le=2000, description="per-queue concurrency bound")
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    query_timeout_s: float = Field(default=3.0, gt=0, le=60,
                                   description="F4 queries answer within this or fail")
    idempotency_ttl_s: int = Field(default=7 * 86400, ge=60)
    inflight_lock_s: int = Field(default=120, ge=5)
    delay_tiers_ms: tuple[int, ...] = Field(
        default=(1_000, 5_000, 30_000, 120_000, 600_000),
        description="broker wait queues; a policy's delays are rounded up to one of them")
    breaker_threshold: int = Field(default=10, ge=1, description="transient failures that open")
    breaker_window_s: float = Field(default=10.0, gt=0)
    breaker_open_s: float = Field(default=5.0, gt=0, description="wait before a probe")
    log_flush_ms: int = Field(default=20, ge=1, le=5000)
    log_level: str = "WARNING"
    log_format: Literal["json", "text"] = Field(
        default="json", description="HUB_LOG_FORMAT: one JSON object per line, masked "
        "(kernel.logs), or text for a human at a terminal")
    otel_exporter: Literal["none", "console", "otlp"] = Field(
        default="none", description="HUB_OTEL_EXPORTER: where OpenTelemetry spans go "
        "(kernel.tracing): nowhere (the trace ids still reach logs and partners), printed "
        "(console), or OTLP (only with opentelemetry-exporter-otlp installed)")
    env: Literal["development", "production"] = Field(
        default="production", description="HUB_ENV. ``development`` only by explicit choice "
        "(make run/simulate/demo, the test harness): the dev admin tokens and the built-in "
        "development secrets are accepted only then; a production hub refuses to start "
        "with any secret still at its development default (``default_secrets``)")
    admin_tokens: SecretStr = Field(
        default=SecretStr(""), description="admin API tokens, token:user:role,... "
        "(api/auth.py); unset: the dev tokens in development mode, else none")
    console_secret: SecretStr = Field(
        default=SecretStr("dev-console-secret"), description="HUB_CONSOLE_SECRET: signs the "
        "web console's session cookies (api/console); its development default is refused "
        "outside development mode; changing it signs everybody out")
    subject_hash_key: SecretStr = Field(
        default=SecretStr("dev-subject-hash-key"), description="HMAC-SHA256 key of the "
        "transactions' subject hashes (ID numbers, credit codes: contracts/subjects.py), for "
        "the search by person or unit; changing it makes earlier transactions unfindable "
        "by subject")
    metrics_token: SecretStr = Field(
        default=SecretStr("dev-metrics-token"), description="bearer token Prometheus scrapes "
        "GET /metrics with (api/metrics.py; any admin API token of any role works too); "
        "the development default is refused outside development mode")
    partners: dict[str, PartnerConfig] = Field(default_factory=_default_partners)
    channels: dict[str, ChannelConfig] = Field(default_factory=_default_channels)
    returnfiles: ReturnFileSettings = Field(default_factory=ReturnFileSettings)
    resident_collection: CollectionPeriods = Field(
        default_factory=CollectionPeriods,
        description="城乡居民集中征缴期 (contracts.channels.CollectionPeriods): inside it a "
        "resident enrolls for next year. Default 09-01..12-31 of the year before (the seed "
        "names the period, not its dates; see contracts/CHANNEL_RULES.md); "
        "[resident_collection.years] \"2027\" = [first, last] for a year's own notice")
    sim_channels_port: int = Field(default=8103, ge=1, le=65535)
    sim_union_port: int = Field(default=8104, ge=1, le=65535,
                                description="make simulate: F12 union (notices)")
    sim_departments_port: int = Field(default=8105, ge=1, le=65535,
                                      description="make simulate: F7 departments (status)")
    sim_assistance_port: int = Field(default=8106, ge=1, le=65535,
                                     description="make simulate: F7 医疗救助平台 + 阳光惠民")
    sim_warnings_port: int = Field(default=8107, ge=1, le=65535,
                                   description="make simulate: F8 departments (warnings)")
    sim_control_port: int = Field(default=8199, ge=1, le=65535,
                                  description="make simulate: the traffic control door "
                                  "(simulators/traffic.py; `hub traffic ...`)")
    sim_control_token: SecretStr = Field(
        default=SecretStr(""), description="X-Sim-Token of the simulators' traffic door; "
        "empty: dev-sim-control in development mode, else the door refuses every call")
    difficulty_files: DifficultyFileSettings = Field(
        default_factory=DifficultyFileSettings,
        description="F7 status back by file: where imported lists and their status files "
        "are kept, and each department's drop folder (contracts/DIFFICULTY.md)")
    warnings: WarningSettings = Field(
        default_factory=WarningSettings,
        description="F8 高额费用预警: departments, lines per year (config/warnings.py)")
    drugs: DrugSettings = Field(
        default_factory=DrugSettings,
        description="F11 线上购药: 单次购药量 default limit, automatic receipt after N days, "
        "the clock (config/drugs.py); the partners are partners.drug_mall, pharmacy_erp, "
        "supervision and prescription")
    prescription: PrescriptionSettings = Field(
        default_factory=PrescriptionSettings,
        description="F11 电子处方中心: the SM2/SM4 keys, appId/appSecret, the answer window "
        "and replay memory (config/prescription.py); the center itself is "
        "partners.prescription")
    union: UnionSettings = Field(
        default_factory=UnionSettings,
        description="F12 工会互助: the case clock's checker, the door's body limit "
        "(config/union.py); the union itself is partners.trade_union")
    transfer: TransferSettings = Field(
        default_factory=TransferSettings,
        description="F9 转移接续: pull schedule and page, 未联网地区 (config/transfer.py); the "
        "platform itself is partners.transfer")
    voucher: VoucherSettings = Field(
        default_factory=VoucherSettings,
        description="F13 电子凭证: the issuing platform's public key, kiosk devices and WeChat "
        "accounts with their keys, rate limits (config/voucher.py); the partners are "
        "partners.core_voucher, voucher_library, medtax and medins")
    institution_recon_hold_minutes: int = Field(
        default=30, ge=1, le=7 * 24 * 60,
        description="F14 单边帐 (contracts/INSTITUTION_RECON.md): minutes an institution-only "
        "settlement is held before the rule reverses it (冲正) at the institution: the core "
        "may still be writing it (HUB_INSTITUTION_RECON_HOLD_MINUTES)")
    institution_recon_daily_hour: int | None = Field(
        default=6, ge=0, le=23,
        description="F14 对账: the Beijing hour from which the hub reconciles yesterday with "
        "every institution (partners.inst_<code>) by itself, once per institution and day; "
        "unset (null/empty) for no daily run (HUB_INSTITUTION_RECON_DAILY_HOUR)")
    settings_file: str = "config/hub.toml"

    @field_validator("delay_tiers_ms")
    @classmethod
    def _tiers(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v:
            raise ValueError("needs at least one wait tier (ms)")
        if bad := [t for t in v if t <= 0]:
            raise ValueError(f"every tier must be a positive number of ms, got {bad[0]}")
        if bad := [t for t in v if t > MAX_TTL_MS]:
            raise ValueError(f"tier {bad[0]} ms is over RabbitMQ's largest TTL {MAX_TTL_MS}")
        if list(v) != sorted(set(v)):
            raise ValueError("must be strictly increasing")
        return v

    @field_validator("partners")
    @classmethod
    def _partner_secrets(cls, v: dict[str, PartnerConfig]) -> dict[str, PartnerConfig]:
        """A partner configured without a secret gets its development default, if it has one
        (``_default_partners``: ``dev-core-secret``, ``dev-tax-secret``)."""
        defaults = _default_partners()
        return {name: p if p.secret.get_secret_value() or name not in defaults
                else p.model_copy(update={"secret": defaults[name].secret})
                for name, p in v.items()}

    @field_validator("partners")
    @classmethod
    def _development_partner_secrets(cls, v: dict[str, PartnerConfig],
                                     info: ValidationInfo) -> dict[str, PartnerConfig]:
        """In development mode only, an F7/F12 partner configured without a secret gets its
        development secret (``development_partner_secrets``: what ``make simulate`` and the
        harness sign with); a production hub keeps it empty (its door refuses every call)."""
        if info.data.get("env") != "development":
            return v
        dev = development_partner_secrets()
        return {name: p if p.secret.get_secret_value() or name not in dev
                else p.model_copy(update={"secret": dev[name]}) for name, p in v.items()}

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, v: str) -> str:
        known = logging.getLevelNamesMapping()
        if v.strip().upper() not in known:
            raise ValueError(f"unknown log level {v!r}; one of "
                             + ", ".join(sorted(set(known) - {"WARN", "FATAL"})))
        return v.strip().upper()

    @field_validator("core_url", "tax_url", "callback_base")
    @classmethod
    def _urls(cls, v: str | None) -> str | None:
        return None if v is None else check_url(v, _HTTP)

    def policy_for(self, partner: str, message_type: str) -> RetryPolicy:
        """The retry policy of a lane's partner: a partner's per-type policy, a channel's
        result-push policy (``channel.<name>``), else the default policy."""
        if partner in self.partners:
            return self.partners[partner].policy(message_type)
        if partner.startswith("dept."):  # F8: a department's warning lane
            return self.warnings.policy
        channel = self.channels.get(partner.removeprefix("channel."))
        return channel.policy if channel is not None else RetryPolicy()

    @model_validator(mode="after")
    def _check(self) -> HubSettings:
        for name in ("core", "tax"):
            if name not in self.partners:
                raise ValueError(f"partner {name!r} is required")
        if not self.amqp_url.startswith(("amqp://", "amqps://")):
            raise ValueError("amqp_url must start with amqp:// or amqps://")
        if not all(u.startswith(("amqp://", "amqps://")) for u in self.amqp_failover_urls):
            raise ValueError("amqp_failover_urls: each must start with amqp:// or amqps://")
        if not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("redis_url must start with redis://, rediss:// or unix://")
        if "+" not in self.database_url.split("://")[0]:
            raise ValueError("database_url needs an async driver, e.g. sqlite+aiosqlite:// "
                             "or postgresql+asyncpg://")
        if short := self._lock_covers():
            raise ValueError("\n".join(short))
        return self

    def _lock_covers(self) -> list[str]:
        """Each partner policy whose in-process tries outlast ``inflight_lock_s``.

        The in-flight lock (``retry.idempotency``) keeps a second worker off a message
        while the first still calls the partner; it must outlast every in-process try
        (``kernel.runtime._call``): ``timeout_s`` × ``inprocess_attempts`` plus the
        backoff waits between them. A policy not listed is the default ``RetryPolicy()``
        (the fallback of a type without its own policy), checked as ``(fallback)``.
        """
        out = []
        for name, partner in self.partners.items():
            policies = dict(partner.policies)
            if "default" not in policies:
                policies["(fallback)"] = RetryPolicy()
            for key, p in policies.items():
                need = (partner.timeout_s * p.inprocess_attempts
                        + p.inprocess_max_s * (p.inprocess_attempts - 1))
                if self.inflight_lock_s < need:
                    out.append(
                        f"setting inflight_lock_s: {self.inflight_lock_s} s is shorter than one "
                        f"in-process try of partners.{name}.policies.{key}: timeout_s "
                        f"{partner.timeout_s:g} × inprocess_attempts {p.inprocess_attempts} "
                        f"+ waits = {need:g} s (another worker could take the message "
                        f"while the partner is still being called)")
        return out

    def partner(self, name: str) -> PartnerConfig:
        """The partner's config, with the ``*_url`` shortcuts applied."""
        p = self.partners[name]
        url = {"core": self.core_url, "tax": self.tax_url}.get(name)
        return p.model_copy(update={"endpoint": url}) if url else p

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _FileSource(settings_cls, _FILE_DATA.get() or {})


_FILE_DATA: ContextVar[dict[str, Any] | None] = ContextVar("hub_settings_file", default=None)


class _FileSource(PydanticBaseSettingsSource):
    """The TOML file's values, ranked below the environment."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> HubSettings:
    """Environment over file over defaults; ``overrides`` (tests) over everything."""
    env = os.environ if env is None else env
    path = Path(overrides.get("settings_file") or env.get("HUB_SETTINGS_FILE")
                or "config/hub.toml")
    file_data: dict[str, Any] = {}
    if path.exists():
        try:
            file_data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"settings file {path}: {exc}") from exc
    elif "HUB_SETTINGS_FILE" in env:
        raise ConfigError(f"setting HUB_SETTINGS_FILE: file {path} does not exist")
    token = _FILE_DATA.set(file_data)
    saved = dict(os.environ)
    try:
        if env is not os.environ:
            os.environ.clear()
            os.environ.update(env)
        return HubSettings(**{**overrides, "settings_file": str(path)})
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            msg = str(e["msg"]).removeprefix("Value error, ")
            where = ".".join(str(p) for p in e["loc"])
            # a whole-settings check names its setting(s) at the start of each line
            lines += [f"setting {where}: {msg}"] if where else msg.splitlines()
        raise ConfigError("invalid settings:\n  " + "\n  ".join(lines)) from None
    finally:
        _FILE_DATA.reset(token)
        if env is not os.environ:
            os.environ.clear()
            os.environ.update(saved)


# -- development defaults of secrets ------------------------------------------------------

def env_name(setting: str) -> str:
    """The environment variable of a dotted setting: ``channels.hrss.secret`` ->
    ``HUB_CHANNELS__HRSS__SECRET``."""
    return "HUB_" + setting.replace(".", "__").upper()


def _field_default(field: Any) -> Any:
    if field.is_required():
        return None
    try:
        return field.get_default(call_default_factory=True)
    except TypeError:  # a factory that needs the other fields: no fixed default
        return None


def _collect_defaults(value: Any, known: set[str]) -> None:
    """Every non-empty ``SecretStr`` in ``value`` and in its models' field defaults."""
    if isinstance(value, SecretStr):
        if value.get_secret_value():
            known.add(value.get_secret_value())
    elif isinstance(value, BaseModel):
        for name, field in type(value).model_fields.items():
            _collect_defaults(_field_default(field), known)
            _collect_defaults(getattr(value, name, None), known)
    elif isinstance(value, Mapping):
        for item in value.values():
            _collect_defaults(item, known)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect_defaults(item, known)


def _find_defaults(value: Any, path: str, known: set[str], found: list[str]) -> None:
    if isinstance(value, SecretStr):
        if value.get_secret_value() in known:
            found.append(path)
    elif isinstance(value, BaseModel):
        for name, field in type(value).model_fields.items():
            _collect_defaults(_field_default(field), known)  # e.g. a partner not in defaults
            _find_defaults(getattr(value, name, None), f"{path}.{name}" if path else name,
                           known, found)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _find_defaults(item, f"{path}.{key}", known, found)


def default_secrets(settings: HubSettings) -> list[str]:
    """Each secret setting still holding a development default, by dotted name.

    Generic over every ``SecretStr`` in the settings (channel secrets, the FTP
    password, partner secrets, whatever is added later): the known development
    values are every non-empty secret among the settings' defaults, field defaults
    and default collections (``_default_channels``, ``_default_partners``) alike;
    a secret whose value is one of them is listed, wherever it was set (a settings
    file copying ``dev-hrss-secret`` counts). An empty secret gives nothing away and
    is not listed (no admin tokens means no admin access).
    """
    known: set[str] = set()
    _collect_defaults(development_partner_secrets(), known)
    for field in type(settings).model_fields.values():
        _collect_defaults(_field_default(field), known)
    found: list[str] = []
    _find_defaults(settings, "", known, found)
    return found


def refuse_default_secrets(settings: HubSettings) -> None:
    """Raise ``ConfigError`` naming each secret at its development default, unless the hub
    is explicitly in development mode (``env="development"``, ``HUB_ENV=development``).

    Called where a hub starts (``main.py run``, ``bootstrap.wiring.build_hub``), not at
    load: a production hub never runs with a secret anyone can read in this repository.
    """
    if settings.env == "development":
        return
    found = default_secrets(settings)
    if found:
        raise ConfigError(
            f"HUB_ENV is {settings.env!r} (not development) and these secrets still have "
            "their development defaults:\n  "
            + "\n  ".join(f"setting {name} ({env_name(name)})" for name in found)
            + "\nset each one (environment or settings file), or HUB_ENV=development for "
            "a development hub")
