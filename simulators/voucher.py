"""F13's partners on real sockets: the voucher issuing platform, core's voucher services,
the 省级凭证库 and the 医税平台 (one app, one ``SimState``; operations tell them apart).

The issuing platform (``VoucherIssuer``) makes an SM2 key pair when it starts and signs
vouchers (``contracts.voucher.encode_qr``); ``forge`` signs with another key. The partners
take ``POST /core/api``, ``/library/api``, ``/medtax/api`` in the national envelope, signed
by the hub (``X-Partner-*``, caller ``hub``, the partner's secret). Effects, counted here:

    setl:<fixmedins>:<setl_req_no>   a settlement made (2207/2304/2102), once per request
                                     whatever the serial: a repeat gets the first answer
    kiosk:<infno>:<certno>:<serial>  a kiosk business request done (V2101-V2103)
    psn:<psn_no>:<version>           a person's basic info taken by the 凭证库 (V1001)
    medtax:<record_no>               a record taken by the 医税平台 (V3101; it refuses any
                                     insutype but 310/510/390 too)

Queries (1101, V5101-V5104) make no effect. Fault switches (``simkit``, operations
``settle``, ``kiosk``, ``query``, ``upload``, ``medtax``): ``http_5xx``/``http_4xx``
before any effect, ``reject`` (infcode -1 with ``fault.code``/``fault.text``), ``slow``,
``timeout`` (the effect is made, the answer comes too late), ``duplicate`` (the request
is processed twice, as if delivered twice: the second is a replay, never an effect).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import random
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr, ValidationError

from adapters.prescription.crypto import sm2_generate, sm2_sign
from adapters.signing import MemoryNonceStore, SignedAuth, verify_signed
from config.settings import HubSettings, PartnerConfig
from config.voucher import DEV_KIOSKS, DEV_WECHAT
from contracts.clock import now_beijing
from contracts.ids import birth_date_of, gender_of
from contracts.national import format_respond_time, make_refmsgid
from contracts.signing import PARTNER_HEADERS, SignatureRefused, request_target
from contracts.voucher import (
    CORE,
    INFNO_MEDTAX,
    INFNO_UPLOAD,
    KIOSK_BUSINESS,
    LIBRARY,
    MEDINS,
    MEDTAX,
    MEDTAX_INSUTYPES,
    QUERIES,
    SETTLE_INFNO,
    VoucherClaims,
    encode_qr,
    format_ts,
)
from simulators.serving import serve_app
from simulators.simkit import Fault, SimState, sim_router

__all__ = ["VoucherBook", "VoucherIssuer", "VoucherSim", "VoucherSims", "create_app",
           "simulate_app", "start_voucher", "voucher_partners"]

_SETTLE = frozenset(SETTLE_INFNO.values())
_KIOSK = frozenset(KIOSK_BUSINESS.values())
_QUERY = frozenset(QUERIES.values())


class VoucherIssuer:
    """The national voucher platform's signing side: its key pair, made at start."""

    def __init__(self, private_key: str = "", public_key: str = "") -> None:
        if not private_key:
            private_key, public_key = sm2_generate()
        self.private_key, self.public_key = private_key, public_key
        self._seq = itertools.count(1)

    def claims(self, id_number: str, name: str, *, insuplc: str = "320100", ttl_s: int = 300,
               age_s: int = 0) -> VoucherClaims:
        issued = now_beijing() - timedelta(seconds=age_s)
        token = hashlib.sha256(f"{id_number}:{next(self._seq)}:{issued}".encode()
                               ).hexdigest()[:32].upper()
        return VoucherClaims.model_validate({
            "ecToken": token, "idNo": id_number, "idType": "01", "userName": name,
            "insuplcAdmdvs": insuplc, "chnlId": "NHSAAPP", "issuedAt": format_ts(issued),
            "expireAt": format_ts(issued + timedelta(seconds=ttl_s))})

    def issue(self, id_number: str, name: str, **how: Any) -> str:
        """A genuine voucher's QR text (``age_s`` > ``ttl_s``: already expired)."""
        return encode_qr(self.claims(id_number, name, **how),
                         lambda m: sm2_sign(self.private_key, self.public_key, m))

    def forge(self, id_number: str, name: str, **how: Any) -> str:
        """A voucher signed with a key that is not the platform's."""
        private, public = sm2_generate()
        return encode_qr(self.claims(id_number, name, **how),
                         lambda m: sm2_sign(private, public, m))


@dataclass
class VoucherBook:
    """What the partners hold: settlements, answers by serial, the 凭证库, the 医税平台."""

    settlements: dict[str, dict[str, Any]] = field(default_factory=dict)
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    persons: dict[str, int] = field(default_factory=dict)
    """psn_no -> the version the 凭证库 holds."""
    medtax: dict[str, dict[str, Any]] = field(default_factory=dict)
    kiosk: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0


def _answer(output: dict[str, Any] | None = None, *, ok: bool = True, err: str = "",
            code: str = "") -> JSONResponse:
    now = now_beijing()
    body: dict[str, Any] = {"infcode": 0 if ok else -1,
                            "inf_refmsgid": make_refmsgid("320100", now, now.microsecond),
                            "respond_time": format_respond_time(now), "err_msg": err,
                            "output": output if ok else ({"err_code": code} if code else {})}
    return JSONResponse(body)


def _person(certno: str) -> dict[str, Any]:
    rng = random.Random(certno)
    return {"baseinfo": {"psn_no": f"32010{int(certno[6:14]) % 10**8:08d}{certno[-4:-1]}",
                         "psn_cert_type": "01", "certno": certno,
                         "psn_name": rng.choice("王李张刘陈杨") + rng.choice("伟芳娜敏静丽"),
                         "gend": gender_of(certno),
                         "brdy": birth_date_of(certno).isoformat(), "insuplc_admdvs": "320100"},
            "insuinfo": [{"insutype": "310", "psn_type": "11", "balc": "1234.56",
                          "psn_insu_stas": "1", "psn_insu_date": "2015-07-01"}]}


class VoucherSim:
    """The partners' behaviour; ``create_app`` puts it behind HTTP."""

    def __init__(self, state: SimState, issuer: VoucherIssuer, secrets: dict[str, str]
                 ) -> None:
        self.state = state
        self.issuer = issuer
        self.book = VoucherBook()
        self.secrets = secrets
        self.nonces = MemoryNonceStore()
        self._seq = itertools.count(1)

    async def handle(self, partner: str, body: dict[str, Any], serial: str) -> JSONResponse:
        infno = str(body.get("infno") or "")
        data = body.get("input") if isinstance(body.get("input"), dict) else {}
        assert isinstance(data, dict)
        op = ("settle" if infno in _SETTLE else "kiosk" if infno in _KIOSK else
              "query" if infno in _QUERY else "upload" if infno == INFNO_UPLOAD else
              "medtax" if infno == INFNO_MEDTAX else "")
        wanted = {CORE: ("settle", "kiosk", "query"), LIBRARY: ("upload",),
                  MEDTAX: ("medtax",)}[partner]
        if op not in wanted:
            return _answer(ok=False, err=f"unknown infno {infno} for {partner}", code="E404")
        fault = self.state.draw(f"{op}:{serial}", operation=op)
        early = self._early(fault)
        if early is not None:
            return early
        if fault is not None and fault.kind == "slow":
            await self.state.sleep_for(fault)
        times = 2 if fault is not None and fault.kind == "duplicate" else 1
        answer: JSONResponse | None = None
        for _ in range(times):
            answer = getattr(self, f"_{op}")(infno, data, serial)
        if fault is not None and fault.kind == "timeout":
            await self.state.sleep_for(fault)
        assert answer is not None
        return answer

    @staticmethod
    def _early(fault: Fault | None) -> JSONResponse | None:
        if fault is None:
            return None
        if fault.kind in ("http_5xx", "soap_fault"):
            return JSONResponse({"detail": "unavailable (simulated)"}, status_code=503)
        if fault.kind == "http_4xx":
            return JSONResponse({"detail": fault.text}, status_code=400)
        if fault.kind in ("reject", "bad_signature"):
            return _answer(ok=False, err=fault.text, code=fault.code)
        return None

    def _replay(self, serial: str) -> JSONResponse | None:
        if serial and serial in self.book.answers:
            self.state.log.replays += 1
            return _answer(self.book.answers[serial])
        return None

    def _keep(self, serial: str, output: dict[str, Any]) -> JSONResponse:
        if serial:
            self.book.answers[serial] = output
        return _answer(output)

    def _settle(self, infno: str, data: dict[str, Any], serial: str) -> JSONResponse:
        again = self._replay(serial)
        if again is not None:
            return again
        d = data.get("data") or {}
        key = f"{d.get('fixmedins_code')}:{d.get('setl_req_no')}"
        if key in self.book.settlements:  # the same settlement under another serial
            self.state.log.replays += 1
            return self._keep(serial, self.book.settlements[key])
        try:
            total = Decimal(str(d["medfee_sumamt"]))
            lines = sum((Decimal(str(x["det_item_fee_sumamt"])) for x in d["feedetail"]),
                        Decimal("0"))
        except (KeyError, TypeError, ArithmeticError):
            return _answer(ok=False, err="medfee_sumamt/feedetail missing or not amounts",
                           code="E400")
        if isinstance(d.get("medfee_sumamt"), float) or lines != total:
            return _answer(ok=False, err=f"费用明细合计 {lines} 与 medfee_sumamt {total} 不符",
                           code="E401")
        if d.get("mdtrt_cert_type") != "01" or not d.get("mdtrt_cert_no"):
            return _answer(ok=False, err="凭证类型须为 01 电子凭证", code="E402")
        fund = (total * Decimal("0.7")).quantize(Decimal("0.01"), ROUND_HALF_UP)
        out = {"setlinfo": {"setl_id": f"S{infno}{next(self._seq):010d}",
                            "certno": d.get("certno"), "psn_name": d.get("psn_name"),
                            "medfee_sumamt": f"{total:.2f}", "fund_pay_sumamt": f"{fund:.2f}",
                            "psn_pay": f"{total - fund:.2f}", "setl_time": str(now_beijing())}}
        self.book.settlements[key] = out
        self.state.log.record(f"setl:{key}", entity=str(d.get("certno")), value=infno)
        return self._keep(serial, out)

    def _kiosk(self, infno: str, data: dict[str, Any], serial: str) -> JSONResponse:
        again = self._replay(serial)
        if again is not None:
            return again
        d = data.get("data") or {}
        certno = str(d.get("certno") or "")
        out: dict[str, Any] = {"certno": certno, "done": True, "biz_no": f"K{next(self._seq):08d}"}
        if infno == KIOSK_BUSINESS["reprint"]:
            out["certificate"] = f"参保凭证 {d.get('year')}: 证件号码 {certno} 参保状态 正常参保"
        self.book.kiosk.append({"infno": infno, **d})
        self.state.log.record(f"kiosk:{infno}:{certno}:{serial}", entity=certno, value=infno)
        return self._keep(serial, out)

    def _query(self, infno: str, data: dict[str, Any], serial: str) -> JSONResponse:
        d = data.get("data") or {}
        certno = str(d.get("certno") or "")
        if len(certno) != 18:
            return _answer(ok=False, err="certno is required", code="E400")
        person = _person(certno)
        if infno == QUERIES["person"]:
            return _answer(person)
        if infno == QUERIES["contributions"]:
            year = int(d.get("year") or now_beijing().year)
            return _answer({"year": year, "records": [
                {"cashym": f"{year}{m:02d}", "insutype": "310", "clct_sumamt": "512.40"}
                for m in range(1, 4)]})
        if infno == QUERIES["balance"]:
            return _answer({"certno": certno, "balc": person["insuinfo"][0]["balc"]})
        if infno == QUERIES["settlements"]:
            mine = [s["setlinfo"] for s in self.book.settlements.values()
                    if s["setlinfo"]["certno"] == certno]
            return _answer({"certno": certno, "records": mine})
        return _answer({"certno": certno, "insutype": "310", "psn_insu_stas": "1"})

    def _upload(self, infno: str, data: dict[str, Any], serial: str) -> JSONResponse:
        p = data.get("psninfo") or {}
        psn_no, version = str(p.get("psn_no") or ""), int(p.get("version") or 0)
        if not psn_no or version < 1:
            return _answer(ok=False, err="psn_no and version are required", code="E400")
        if self.book.persons.get(psn_no, 0) >= version:
            self.state.log.replays += 1
            return _answer({"psn_no": psn_no, "version": self.book.persons[psn_no]})
        self.book.persons[psn_no] = version
        self.state.log.record(f"psn:{psn_no}:{version}", entity=psn_no, value=version)
        return _answer({"psn_no": psn_no, "version": version})

    def _medtax(self, infno: str, data: dict[str, Any], serial: str) -> JSONResponse:
        r = data.get("data") or {}
        no = str(r.get("record_no") or "")
        if r.get("insutype") not in MEDTAX_INSUTYPES:
            return _answer(ok=False, err=f"险种 {r.get('insutype')} 不属医税平台业务", code="M403")
        if no in self.book.medtax:
            self.state.log.replays += 1
            return _answer({"record_no": no, "accepted": True})
        self.book.medtax[no] = r
        self.state.log.record(f"medtax:{no}", entity=no, value=r.get("insutype"))
        return _answer({"record_no": no, "accepted": True})


def create_app(sim: VoucherSim) -> FastAPI:
    app = FastAPI(title="F13 simulators: voucher platform, core, 省级凭证库, 医税平台")
    app.state.voucher = sim
    app.include_router(sim_router(sim.state))

    async def take(request: Request, partner: str) -> JSONResponse:
        body = await request.body()
        try:
            await verify_signed("hub", sim.secrets[partner], method=request.method,
                                target=request_target(request.scope), headers=request.headers,
                                body=body, nonces=sim.nonces, names=PARTNER_HEADERS,
                                scope=f"hub:{partner}")
        except SignatureRefused as exc:
            sim.book.bad_signatures += 1
            return JSONResponse({"detail": exc.errors[0][1]}, status_code=401)
        try:
            data = json.loads(body)
        except ValueError:
            return _answer(ok=False, err="body is not JSON", code="E400")
        if not isinstance(data, dict):
            return _answer(ok=False, err="body is not an object", code="E400")
        return await sim.handle(partner, data, request.headers.get("x-hub-serial", ""))

    @app.post("/core/api")
    async def core(request: Request) -> JSONResponse:
        return await take(request, CORE)

    @app.post("/library/api")
    async def library(request: Request) -> JSONResponse:
        return await take(request, LIBRARY)

    @app.post("/medtax/api")
    async def medtax(request: Request) -> JSONResponse:
        return await take(request, MEDTAX)

    @app.post("/_sim/voucher/issue")
    async def issue(body: dict[str, Any]) -> dict[str, str]:
        """A voucher for ``id_number``/``name`` (``ttl_s``, ``age_s``; ``forged``)."""
        try:
            how = {"ttl_s": int(body.get("ttl_s", 300)), "age_s": int(body.get("age_s", 0))}
            make = sim.issuer.forge if body.get("forged") else sim.issuer.issue
            return {"ec_qr": make(str(body["id_number"]), str(body["name"]), **how)}
        except (KeyError, ValueError, ValidationError) as exc:
            return {"error": str(exc)[:200]}

    @app.get("/_sim/voucher/public-key")
    async def public_key() -> dict[str, str]:
        return {"public_key": sim.issuer.public_key}

    return app


@dataclass
class VoucherSims:
    """``sims["voucher"]``: the simulator, its base URL, and how to sign as an institution,
    a kiosk or a WeChat account."""

    sim: VoucherSim
    url: str
    settings: HubSettings

    @property
    def state(self) -> SimState:
        return self.sim.state

    @property
    def issuer(self) -> VoucherIssuer:
        return self.sim.issuer

    def medins_auth(self) -> SignedAuth:
        return SignedAuth(MEDINS, self.settings.partners[MEDINS].secret.get_secret_value())

    def kiosk_auth(self, device: str = "") -> SignedAuth:
        devices = self.settings.voucher.kiosk_devices
        device = device or next(iter(devices))
        return SignedAuth(device, devices[device].get_secret_value())

    def wechat_auth(self, account: str = "") -> SignedAuth:
        accounts = self.settings.voucher.wechat_accounts
        account = account or next(iter(accounts))
        return SignedAuth(account, accounts[account].get_secret_value())


def _cfg(s: HubSettings, name: str, endpoint: str) -> PartnerConfig:
    base = s.partners.get(name)
    secret = base.secret if base is not None and base.secret.get_secret_value() \
        else SecretStr(f"dev-{name}-secret")
    return (base or PartnerConfig(protocol="http-json", endpoint=endpoint)).model_copy(
        update={"endpoint": endpoint, "secret": secret})


def voucher_partners(s: HubSettings, url: str) -> dict[str, PartnerConfig]:
    """The F13 partners pointed at a simulator at ``url`` (development secrets if unset)."""
    return {CORE: _cfg(s, CORE, f"{url}/core/api"),
            LIBRARY: _cfg(s, LIBRARY, f"{url}/library/api"),
            MEDTAX: _cfg(s, MEDTAX, f"{url}/medtax/api"),
            MEDINS: _cfg(s, MEDINS, f"{url}/unused")}


async def start_voucher(stack: contextlib.AsyncExitStack, s: HubSettings,
                        sims: dict[str, Any]) -> HubSettings:
    """Serve F13's simulators on ``stack`` (a fresh platform key pair); ``sims["voucher"]``
    is a ``VoucherSims``; the answer points the hub's F13 partners at them and gives it the
    platform's public key."""
    issuer = VoucherIssuer()
    partners = voucher_partners(s, "http://127.0.0.1:1")
    sim = VoucherSim(SimState(), issuer, {n: partners[n].secret.get_secret_value()
                                          for n in (CORE, LIBRARY, MEDTAX)})
    url = await stack.enter_async_context(serve_app(create_app(sim)))
    v = s.voucher
    out = s.model_copy(update={
        "partners": {**s.partners, **voucher_partners(s, url)},
        "voucher": v.model_copy(update={
            "platform_public_key": issuer.public_key,
            "kiosk_devices": v.kiosk_devices or {k: SecretStr(x) for k, x in DEV_KIOSKS.items()},
            "wechat_accounts": v.wechat_accounts or {
                k: SecretStr(x) for k, x in DEV_WECHAT.items()}})})
    sims["voucher"] = VoucherSims(sim, url, out)
    return out



def simulate_app(s: HubSettings) -> FastAPI:
    """``main.py simulate``: F13's simulators (served on ``voucher.sim_port``); the platform
    signs with the development key pair the hub reads (``voucher.dev_keys_file``)."""
    from adapters.voucher.client import dev_platform_keys

    issuer = VoucherIssuer(*dev_platform_keys(s.voucher.dev_keys_file))
    partners = voucher_partners(s, "http://127.0.0.1:1")
    return create_app(VoucherSim(SimState(), issuer, {
        n: partners[n].secret.get_secret_value() for n in (CORE, LIBRARY, MEDTAX)}))
