"""Traffic on request: the simulators' control door, so a hand-run hub gets real traffic.

With ``make run`` and ``make simulate`` the partners sit idle: only ``make demo`` made
core emit events. This door (served by ``make simulate`` on ``sim_control_port``, 8199)
makes the partners act as they do in the demo, signed with their secrets:

    POST /traffic/core        core emits ``count`` events of one infno to the hub's core
                              door (H2101 职工参保登记: fresh employees; any other F2
                              infno of the tax catalogue: its sample record, each a new
                              msgid), as ``simulators.core.emit_enrollments`` does
    POST /traffic/channel     a channel (我的南京, 政务办, 网厅, 人社) submits ``count``
                              applications of one type, each a fresh valid ID number
    POST /traffic/tax         tax pushes ``count`` F3 notifications (SOAP, signed as tax)
                              to the hub's tax callback, or drops a return file (回盘) of
                              ``count`` lines on its FTP
    POST /traffic/department  a F7 department sends its month's list of ``count`` rows
    GET|POST|DELETE /traffic/faults/{sim}   a simulator's fault switches (simkit ``Fault``),
                              proxied to its ``/_sim/faults``; ``mode`` 5xx, 4xx, timeout,
                              slow, reject, duplicate, soap_fault, bad_signature
    GET  /traffic/effects/{sim}   the side effects counted at that simulator
    GET  /traffic             what can be driven (the simulators and their URLs)

Every call but ``GET /traffic/health`` needs ``X-Sim-Token``: ``sim_control_token``, or in
a development setup without one the well-known ``dev-sim-control``; a production setup
without a token refuses every call (403). The door only drives the simulators: what
the hub does with the traffic is counted at the simulators (``/traffic/effects``).
"""

from __future__ import annotations

import hmac
import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import httpx
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from pydantic import BaseModel, Field

from adapters.http import bounded_client
from adapters.signing import SignedAuth
from config.settings import ChannelConfig, HubSettings, development_partner_secrets
from contracts.channels import CHANNEL_TYPES
from contracts.difficulty import DEPARTMENTS, partner_of
from contracts.ids import make_id_number
from contracts.national import NationalRequest, make_msgid, now_cst
from simulators.channels import submit
from simulators.core import CoreStore, emit_enrollments
from simulators.simkit import Fault, FaultKind

__all__ = ["DEV_CONTROL_TOKEN", "FAULT_MODES", "TrafficTargets", "control_token", "create_app",
           "targets_from_settings", "targets_from_stack"]

DEV_CONTROL_TOKEN = "dev-sim-control"
"""The control token of a development setup without ``sim_control_token``."""

FAULT_MODES: dict[str, FaultKind] = {
    "5xx": "http_5xx", "4xx": "http_4xx", "timeout": "timeout", "slow": "slow",
    "reject": "reject", "duplicate": "duplicate", "soap_fault": "soap_fault",
    "bad_signature": "bad_signature"}
"""The CLI's fault modes -> simkit ``FaultKind``."""

_SENDER = "NJYBCORE0009"
"""msgid sender of core's events sent through this door (the demo uses ...0001/0002)."""
_SOAP = {"Content-Type": "text/xml; charset=utf-8"}


@dataclass
class TrafficTargets:
    """Who the door drives: the hub's URL, the partners' secrets, the simulators' URLs."""

    hub_url: str
    secrets: Mapping[str, str]
    """partner name -> the secret it signs its calls to the hub with (core, tax, the F7
    departments' ``difficulty_<dept>``)."""
    channels: Mapping[str, ChannelConfig]
    sims: Mapping[str, str]
    """simulator name -> base URL (its ``/_sim`` is there)."""
    token: str
    ftp_root: Path | None = None
    ftp_dir: str = "/outbound"
    timeout_s: float = 30.0
    _store: CoreStore = field(default_factory=CoreStore)
    _rng: random.Random = field(default_factory=lambda: random.Random(time.time_ns()))
    _serial: int = 0

    def secret(self, partner: str) -> str:
        if partner not in self.secrets:
            raise HTTPException(409, f"no secret for partner {partner!r} in this setup")
        return self.secrets[partner]

    def fresh_employees(self, n: int) -> CoreStore:
        """The store with ``n`` employees never emitted before, next in turn (the store's
        cursor has gone through every earlier one exactly once)."""
        extra = CoreStore.seed(max(1, n // 20), n, rng_seed=self._rng.randrange(2**31))
        for e in extra.persons.values():
            self._store.add(e)
        return self._store

    def next_serial(self) -> int:
        self._serial += 1
        return self._serial


class CoreTraffic(BaseModel):
    type: str = Field(default="H2101", pattern=r"^H\d{4}$",
                      description="core's infno: H2101 or another F2 event of the catalogue")
    count: int = Field(default=10, ge=1, le=10_000)
    concurrency: int = Field(default=20, ge=1, le=200)
    invalid_every: int = Field(default=0, ge=0, description="every k-th H2101 a bad ID number")


class ChannelTraffic(BaseModel):
    channel: str = "my_nanjing"
    type: str = "resident_enroll"
    count: int = Field(default=10, ge=1, le=5_000)


class TaxTraffic(BaseModel):
    kind: Literal["push", "returnfile"] = "push"
    count: int = Field(default=5, ge=1, le=1_000_000,
                       description="pushes, or lines of the return file")
    file_kind: Literal["unit_pay", "employee_pay", "resident_pay"] = "unit_pay"


class DepartmentTraffic(BaseModel):
    department: str = "civil_affairs"
    count: int = Field(default=10, ge=1, le=5_000)
    bad: int = Field(default=0, ge=0, le=1_000, description="bad rows the hub must refuse")
    month: str = Field(default="", pattern=r"^(\d{4}-\d{2})?$",
                       description="YYYY-MM; empty: this month")


class FaultSwitch(BaseModel):
    mode: str = Field(description="5xx, 4xx, timeout, slow, reject, duplicate, soap_fault, "
                      "bad_signature")
    rate: float = Field(default=1.0, ge=0.0, le=1.0)
    count: int | None = Field(default=None, ge=0, description="how many calls; none: all")
    delay_s: float = Field(default=0.0, ge=0.0, le=120.0)
    operation: str = ""
    match: str = ""


class Sent(BaseModel):
    """What the partner sent and how the hub answered, by HTTP status class."""

    sent: int
    accepted: int
    refused: int
    failed: int = 0
    ids: list[str] = Field(default_factory=list)


def _tally(statuses: list[int], ids: list[str]) -> Sent:
    return Sent(sent=len(statuses), accepted=sum(1 for s in statuses if s < 300),
                refused=sum(1 for s in statuses if 400 <= s < 500),
                failed=sum(1 for s in statuses if s >= 500), ids=ids)


FIXTURES = Path(__file__).resolve().parents[1] / "contracts" / "fixtures"
"""The committed samples the partners send (``tools.fixtures`` writes them)."""


def _catalogue_sample(name: str, part: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "catalogue" / f"{name}.json")
                                      .read_text("utf-8"))
    return dict(data[part])


def _guard(request: Request, x_sim_token: Annotated[str, Header()] = "") -> None:
    """The control token: 403 when none is configured, 401 when missing or wrong."""
    token = request.app.state.targets.token
    if not token:
        raise HTTPException(403, "no sim_control_token configured: traffic is off")
    if not hmac.compare_digest(x_sim_token.encode(), token.encode()):
        raise HTTPException(401, "X-Sim-Token missing or wrong")


Guarded = Annotated[None, Depends(_guard)]


def create_app(targets: TrafficTargets) -> FastAPI:
    """The control door over ``targets`` (see the module docstring)."""
    app = FastAPI(title="Simulator traffic control (development)")
    app.state.targets = targets

    def client() -> httpx.AsyncClient:
        return bounded_client(limit=32, timeout=targets.timeout_s)

    def sim_url(sim: str) -> str:
        if sim not in targets.sims:
            raise HTTPException(404, f"no simulator {sim!r}; one of "
                                + ", ".join(sorted(targets.sims)))
        return targets.sims[sim]

    @app.get("/traffic/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/traffic")
    async def overview(_auth: Guarded) -> dict[str, Any]:
        return {"hub": targets.hub_url, "simulators": dict(targets.sims),
                "channels": {c: list(CHANNEL_TYPES.get(c, ())) for c in targets.channels},
                "departments": list(DEPARTMENTS), "fault_modes": sorted(FAULT_MODES)}

    @app.post("/traffic/core")
    async def core(body: CoreTraffic, _auth: Guarded) -> Sent:
        from contracts.taxcat import ops_of

        secret = targets.secret("core")
        if body.type == "H2101":
            store = targets.fresh_employees(body.count)
            statuses: list[int] = []

            async def note(r: httpx.Response) -> None:
                statuses.append(r.status_code)

            async with client() as http:
                http.event_hooks = {"response": [note]}
                try:
                    ids = await emit_enrollments(targets.hub_url, store, body.count,
                                                 client=http, secret=secret,
                                                 concurrency=body.concurrency,
                                                 invalid_every=body.invalid_every)
                except httpx.HTTPError as exc:
                    raise HTTPException(502, f"the hub did not take core's events: {exc}") \
                        from None
            return _tally(statuses, ids)
        submits = {o.core_infno: o for o in ops_of("submit")}
        if body.type not in submits:
            raise HTTPException(422, f"type: not a core event; one of {', '.join(submits)}")
        o = submits[body.type]
        data = _catalogue_sample(o.name, "core")
        statuses, ids = [], []
        async with client() as http:
            for _ in range(body.count):
                req = NationalRequest(infno=o.core_infno, input={"data": data},
                                      msgid=make_msgid(_SENDER, now_cst(),
                                                       targets.next_serial() % 10000))
                r = await _post(http, f"{targets.hub_url}/partners/core/events",
                                json=req.model_dump(mode="json", exclude_none=True),
                                auth=SignedAuth("core", secret))
                statuses.append(r)
                ids.append(req.msgid)
        return _tally(statuses, ids)

    @app.post("/traffic/channel")
    async def channel(body: ChannelTraffic, _auth: Guarded) -> Sent:
        cfg = targets.channels.get(body.channel)
        if cfg is None:
            raise HTTPException(422, f"channel: unknown; one of {', '.join(targets.channels)}")
        if body.type not in CHANNEL_TYPES.get(body.channel, ()):
            raise HTTPException(422, f"type: {body.channel} may send "
                                + ", ".join(CHANNEL_TYPES.get(body.channel, ())))
        sample = json.loads((FIXTURES / "channels" / f"{body.type}.json")
                            .read_text("utf-8"))["payload"]
        statuses: list[int] = []
        ids: list[str] = []
        async with client() as http:
            for _ in range(body.count):
                payload = dict(sample)
                if "id_number" in payload:
                    payload["id_number"] = make_id_number(targets._rng)
                request_id = f"traffic-{body.channel}-{time.time_ns()}-{targets.next_serial()}"
                try:
                    r = await submit(http, targets.hub_url, body.channel, cfg, body.type,
                                     request_id, payload)
                except httpx.HTTPError:
                    statuses.append(599)
                    continue
                statuses.append(r.status_code)
                if r.status_code == 202:
                    ids.append(str(r.json().get("application_id")))
        return _tally(statuses, ids)

    @app.post("/traffic/tax")
    async def tax(body: TaxTraffic, _auth: Guarded) -> Sent:
        if body.kind == "returnfile":
            if targets.ftp_root is None:
                raise HTTPException(409, "no tax FTP in this setup")
            from simulators.tax_ftp import TaxFtpSimulator

            ftp = TaxFtpSimulator(targets.ftp_root)
            name = ftp.drop_file(body.file_kind, body.count, file_date=now_cst().date(),
                                 batch_no=f"{targets._rng.randrange(10000):04d}",
                                 seed=targets._rng.randrange(2**31))
            return Sent(sent=1, accepted=1, refused=0, ids=[name.path])
        from adapters.tax.soap import build_request
        from contracts.taxcat import ops_of

        pushes = [o for o in ops_of("push") if o.name != "CompareBatchNotify"]
        secret = targets.secret("tax")
        statuses: list[int] = []
        ids: list[str] = []
        async with client() as http:
            for i in range(body.count):
                o = pushes[i % len(pushes)]
                serial = f"TRAFFIC-{time.time_ns()}-{targets.next_serial()}"
                xml = build_request(o.name, _catalogue_sample(o.name, "payload"), serial,
                                    "TAXSYS")
                statuses.append(await _post(http, f"{targets.hub_url}/partners/tax/callback",
                                            content=xml, headers=_SOAP,
                                            auth=SignedAuth("tax", secret)))
                ids.append(serial)
        return _tally(statuses, ids)

    @app.post("/traffic/department")
    async def department(body: DepartmentTraffic, _auth: Guarded) -> Sent:
        from simulators.departments import make_records, send_list

        if body.department not in DEPARTMENTS:
            raise HTTPException(422, f"department: one of {', '.join(DEPARTMENTS)}")
        month = body.month or now_cst().strftime("%Y-%m")
        rows = make_records(targets._rng, body.department, body.count, month=month,
                            bad=body.bad)
        list_id = f"TRAFFIC-{body.department}-{time.time_ns()}"
        async with client() as http:
            try:
                r = await send_list(http, targets.hub_url, body.department, month, list_id,
                                    rows, targets.secret(partner_of(body.department)))
            except httpx.HTTPError as exc:
                raise HTTPException(502, f"the hub did not take the list: {exc}") from None
        if r.status_code >= 300:
            return Sent(sent=len(rows), accepted=0, refused=len(rows) if r.status_code < 500
                        else 0, failed=len(rows) if r.status_code >= 500 else 0)
        refused = _refused_rows(r)
        return Sent(sent=len(rows), accepted=len(rows) - refused, refused=refused,
                    ids=[list_id])

    @app.get("/traffic/faults/{sim}")
    async def faults(sim: str, _auth: Guarded) -> Any:
        return await _sim_call("GET", f"{sim_url(sim)}/_sim/faults")

    @app.post("/traffic/faults/{sim}")
    async def add_fault(sim: str, switch: FaultSwitch, _auth: Guarded) -> Any:
        kind = FAULT_MODES.get(switch.mode)
        if kind is None:
            raise HTTPException(422, f"mode: one of {', '.join(FAULT_MODES)}")
        fault = Fault(kind=kind, rate=switch.rate, count=switch.count, delay_s=switch.delay_s,
                      operation=switch.operation, match=switch.match)
        return await _sim_call("POST", f"{sim_url(sim)}/_sim/faults",
                               fault.model_dump(mode="json"))

    @app.delete("/traffic/faults/{sim}")
    async def clear_faults(sim: str, _auth: Guarded) -> Any:
        return await _sim_call("DELETE", f"{sim_url(sim)}/_sim/faults")

    @app.get("/traffic/effects/{sim}")
    async def effects(sim: str, _auth: Guarded) -> Any:
        answer = await _sim_call("GET", f"{sim_url(sim)}/_sim/effects")
        return {k: v for k, v in answer.items() if k != "order"} \
            if isinstance(answer, dict) else answer

    async def _sim_call(method: str, url: str, body: Any = None) -> Any:
        async with client() as http:
            try:
                r = await http.request(method, url, json=body)
            except httpx.HTTPError as exc:
                raise HTTPException(502, f"simulator unreachable: {type(exc).__name__}") \
                    from None
        if r.status_code >= 400:
            raise HTTPException(502, f"simulator answered {r.status_code}: {r.text[:200]}")
        return r.json()

    return app


def _refused_rows(r: httpx.Response) -> int:
    """Rows the hub's receipt of a F7 list refuses (row, field, reason), 0 if it names none."""
    try:
        receipt = r.json()
    except ValueError:
        return 0
    for key in ("refused", "rejected", "errors"):
        value = receipt.get(key) if isinstance(receipt, dict) else None
        if isinstance(value, list):
            return len({e.get("row", i) if isinstance(e, dict) else i
                        for i, e in enumerate(value)})
        if isinstance(value, int):
            return value
    return 0


async def _post(http: httpx.AsyncClient, url: str, **kwargs: Any) -> int:
    """The hub's HTTP status for one call (599: it could not be reached)."""
    try:
        return (await http.post(url, **kwargs)).status_code
    except httpx.HTTPError:
        return 599


def _base(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _secret(settings: HubSettings, partner: str) -> str:
    cfg = settings.partners.get(partner)
    configured = cfg.secret.get_secret_value() if cfg is not None else ""
    dev = development_partner_secrets().get(partner)
    return configured or (dev.get_secret_value() if dev is not None else "")


def control_token(settings: HubSettings) -> str:
    """``sim_control_token``; in development mode without one, ``DEV_CONTROL_TOKEN``."""
    token = getattr(settings, "sim_control_token", None)
    value = token.get_secret_value() if token is not None else ""
    return value or (DEV_CONTROL_TOKEN if settings.env == "development" else "")


def targets_from_settings(settings: HubSettings, *, host: str = "127.0.0.1",
                          hub_url: str | None = None,
                          ftp_root: Path | None = Path(".run/ftp")) -> TrafficTargets:
    """``make simulate``'s simulators as the settings place them (ports), the hub at
    ``callback_base`` (where the simulators call the hub back), the partners' secrets."""
    local = f"http://{'127.0.0.1' if host == '0.0.0.0' else host}"
    sims = {"core": f"{local}:{settings.sim_core_port}",
            "tax": f"{local}:{settings.sim_tax_port}",
            "channels": f"{local}:{settings.sim_channels_port}",
            "departments": f"{local}:{settings.sim_departments_port}",
            "assistance": f"{local}:{settings.sim_assistance_port}",
            "warnings": f"{local}:{settings.sim_warnings_port}",
            "union": f"{local}:{settings.sim_union_port}",
            "transfer": f"{local}:{settings.transfer.sim_port}",
            "prescription": f"{local}:{settings.prescription.sim_port}"}
    for sim, partner in (("finance", "erp_finance"), ("pharmacy", "pharmacy_erp"),
                         ("supervision", "supervision")):
        if partner in settings.partners:
            port = urlsplit(settings.partners[partner].endpoint).port
            if port:
                sims[sim] = f"{local}:{port}"
    partners = ["core", "tax", *(partner_of(d) for d in DEPARTMENTS)]
    return TrafficTargets(
        hub_url=hub_url or settings.callback_base, channels=settings.channels, sims=sims,
        secrets={p: s for p in partners if (s := _secret(settings, p))},
        token=control_token(settings), ftp_root=ftp_root, ftp_dir=settings.returnfiles.root)


def targets_from_stack(st: Any, token: str = DEV_CONTROL_TOKEN) -> TrafficTargets:
    """A ``simulators.harness`` stack's simulators and hub (tests, the demo)."""
    channel_url = next((c.callback_url for c in st.settings.channels.values()
                        if c.callback_url), None)
    sims = {"core": st.core_url, "tax": _base(st.tax_url)}
    if channel_url:
        sims["channels"] = _base(channel_url)
    dept = st.settings.partners.get(partner_of(next(iter(DEPARTMENTS))))
    if dept is not None:
        sims["departments"] = _base(dept.endpoint)
    partners = ["core", "tax", *(partner_of(d) for d in DEPARTMENTS)]
    secrets = {p: st.partner_secret(p) for p in partners if p in st.settings.partners}
    return TrafficTargets(hub_url=st.hub_url, secrets=secrets, channels=st.settings.channels,
                          sims=sims, token=token, ftp_root=None)
