"""F11 电子处方中心 keys and verification settings: ``[prescription]`` in ``config/hub.toml``.

Where the center is, its timeout and retry policy are ``[partners.prescription]`` like
every partner's; this section holds what the signed, encrypted envelope needs
(``contracts/PRESCRIPTION.md``). Every key comes from the environment in production:
``HUB_PRESCRIPTION__APP_SECRET``, ``__SM4_KEY``, ``__HUB_PRIVATE_KEY``, ``__HUB_PUBLIC_KEY``,
``__CENTER_PUBLIC_KEY`` (and ``__APP_ID``). Left empty, a development hub generates a set
once into ``dev_keys_file`` (shared with ``main.py simulate``'s center); any other hub
refuses to build the client (``adapters.prescription.client.prescription_keys``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["PrescriptionSettings"]


class PrescriptionSettings(BaseModel):
    """The envelope's keys (hex), the hub's institution code, and the answer checks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    app_id: str = Field(default="", max_length=64, description="appId the center gave the hub")
    app_secret: SecretStr = Field(default=SecretStr(""), description="appSecret: the sign "
                                  "string ends with &key=<appSecret>")
    sm4_key: SecretStr = Field(default=SecretStr(""), description="SM4 key, 32 hex")
    hub_private_key: SecretStr = Field(default=SecretStr(""),
                                       description="the hub's SM2 private key, 64 hex")
    hub_public_key: str = Field(default="", description="the hub's SM2 public key, 04||X||Y "
                                "hex (given to the center; checked against the private key)")
    center_public_key: str = Field(default="", description="the center's SM2 public key, "
                                   "04||X||Y hex: every answer must verify with it")
    fixmedins_code: str = Field(default="P32010000001", min_length=1, max_length=30,
                                description="定点医药机构编号 the hub asks as")
    max_skew_s: int = Field(default=300, ge=5, le=3600, description="an answer's timestamp "
                            "may be this far from the hub's clock, either way")
    replay_memory: int = Field(default=100_000, ge=100, le=10_000_000, description="answers "
                               "remembered (per process) to refuse one seen before")
    dev_keys_file: str = Field(default=".run/dev-keys/prescription.json",
                               description="development mode only: generated keys, shared "
                               "by the hub and the simulated center")
    sim_port: int = Field(default=8120, ge=1, le=65535,
                          description="main.py simulate: the simulated center's port")
