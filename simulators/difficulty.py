"""F7's simulators on real sockets for the harness: the departments, the platform and
阳光惠民 (served by the platform's app).

``start_difficulty`` serves both in the harness's exit stack and gives back the hub's
partner settings pointed at them (``partners.assistance``, ``partners.difficulty_<dept>``),
with development secrets where none is configured.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import SecretStr

from config.settings import PartnerConfig
from contracts.difficulty import ASSISTANCE, DEPARTMENTS, SUNSHINE, partner_of
from simulators.assistance import AssistanceBook, SunshineBook
from simulators.assistance import create_app as assistance_app
from simulators.departments import DepartmentInbox
from simulators.departments import create_app as departments_app
from simulators.serving import serve_app
from simulators.simkit import SimState

__all__ = ["DifficultySims", "start_difficulty"]


@dataclass
class DifficultySims:
    dept_state: SimState
    inbox: DepartmentInbox
    platform_state: SimState
    platform: AssistanceBook
    partners: dict[str, PartnerConfig]
    """The hub's partners, the F7 ones pointed at these simulators."""
    sunshine: SunshineBook | None = None
    """阳光惠民 (1497), served by the platform's app at ``/sunshine``."""

    def secret(self, department: str) -> str:
        return self.partners[partner_of(department)].secret.get_secret_value()


def _partner(partners: Mapping[str, PartnerConfig], name: str, endpoint: str) -> PartnerConfig:
    base = partners.get(name) or PartnerConfig(protocol="rest", endpoint=endpoint)
    secret = base.secret if base.secret.get_secret_value() else SecretStr(f"dev-{name}-secret")
    return base.model_copy(update={"endpoint": endpoint, "secret": secret})


async def start_difficulty(stack: contextlib.AsyncExitStack,
                           partners: Mapping[str, PartnerConfig]) -> DifficultySims:
    out = dict(partners)
    names = [partner_of(d) for d in DEPARTMENTS]
    secrets = {d: _partner(partners, partner_of(d), "http://x").secret.get_secret_value()
               for d in DEPARTMENTS}
    dept_state, inbox = SimState(), DepartmentInbox()
    dept_url = await stack.enter_async_context(serve_app(departments_app(secrets, dept_state,
                                                                         inbox)))
    for d, name in zip(DEPARTMENTS, names, strict=True):
        out[name] = _partner(partners, name, f"{dept_url}/departments/{d}")
    platform_state, book = SimState(), AssistanceBook()
    secret = _partner(partners, ASSISTANCE, "http://x").secret.get_secret_value()
    sunshine = SunshineBook()
    sun_secret = _partner(partners, SUNSHINE, "http://x").secret.get_secret_value()
    platform_url = await stack.enter_async_context(serve_app(assistance_app(
        secret, platform_state, book, sunshine_secret=sun_secret, sunshine=sunshine)))
    out[ASSISTANCE] = _partner(partners, ASSISTANCE, f"{platform_url}/assistance")
    out[SUNSHINE] = _partner(partners, SUNSHINE, f"{platform_url}/sunshine")
    return DifficultySims(dept_state, inbox, platform_state, book, out, sunshine)
