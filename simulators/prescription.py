"""The 电子处方中心 (F11) on a real socket: ``POST /epc/api/fixmedins/<path>``, the real
envelope both ways (``contracts.prescription``), holding synthetic prescriptions.

The center verifies every request of the hub (appId, timestamp window, SM4, SM3withSM2 with
the hub's public key, a request seen before) and answers a refused one signed, with a
non-zero ``code`` (4001 verification, 4002 repeated request, 4003 a bad field). It holds
prescriptions in every state a sale must handle (``RxCenter.seeded``): valid, expired,
revoked, dispensed, not yet reviewed, and a valid one for another person.

Failure switches (``simkit``: ``POST /_sim/faults`` or ``sims["prescription"].switch``):

    timeout, slow      the answer comes late (``delay_s``)
    http_5xx, http_4xx HTTP 503 / 400, no envelope
    reject             a signed answer with code ``Fault.code`` (numeric; else 9999), text
    duplicate          the previous answer again, byte for byte (a replay: the hub refuses)
    bad_signature      an answer that must not verify; ``Fault.code`` picks how:
        "signature" (or any other code)  the signature's bytes altered
        "wrong_key"                      signed with another SM2 key
        "replay"                         the first answer this center ever sent, again
        "stale"                          correctly signed, timestamp outside the window
        "garbage"                        ``encData`` random bytes (does not decrypt)
        "wrong_sm4"                      ``encData`` under another SM4 key
        "wrong_app"                      another appId

Side effects at the center (``state.log``): ``uploadChk:<hospRxno>``, ``sign:<digest>``,
``rxFileUpld:<hiRxno>``, ``rxUndo:<hiRxno>``, once each (a repeat counts in
``log.replays``); queries are counted in ``RxCenter.queries`` per path, requests refused
in ``RxCenter.refused``.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import os
import random
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from adapters.prescription.client import PrescriptionKeys, dev_keys, generate_keys, with_keys
from adapters.prescription.crypto import SmCrypto, sm2_generate, sm3, sm4_key_generate
from config.settings import HubSettings, PartnerConfig
from contracts.clock import BEIJING
from contracts.errors import field_errors
from contracts.ids import make_id_number
from contracts.prescription import (
    CHECK_APPROVED,
    CIRC_DRUG_QUERY,
    HOSP_RX_DETL_QUERY,
    MODELS,
    NOT_FOUND_CODE,
    OK_CODE,
    PATHS,
    RX_CHK_INFO_QUERY,
    RX_FILE_UPLD,
    RX_FIXMEDINS_SIGN,
    RX_SETL_INFO_QUERY,
    RX_UNDO,
    STATUS_EXPIRED,
    STATUS_REVOKED,
    STATUS_VALID,
    UPLOAD_CHK,
    USED_DISPENSED,
    USED_NOT_YET,
    PrescriptionRefused,
    RxBody,
    RxDrugLine,
    b64,
    format_time,
    open_envelope,
    seal,
)
from simulators.serving import serve_app
from simulators.simkit import Fault, FaultKind, SimState, sim_router

__all__ = ["CATALOGUE", "PrescriptionSim", "RxCenter", "RxRecord", "create_app",
           "serve_center", "start_prescription"]

CATALOGUE: dict[str, tuple[str, str]] = {
    "XA10BAA017A001010101445": ("二甲双胍片", "0.5g*48片"),
    "XC09AAA068A001010100722": ("卡托普利片", "25mg*100片"),
    "XJ01CAA040A001010100001": ("阿莫西林胶囊", "0.25g*24粒"),
    "XN02BEA040A001010101474": ("布洛芬缓释胶囊", "0.3g*20粒"),
}
"""可流转药品目录 of the simulated center: 医保药品目录编码 -> (通用名, 规格)."""

_STATUS_NAMES = {STATUS_VALID: "有效", STATUS_EXPIRED: "已失效", STATUS_REVOKED: "已撤销"}
_CHECK_NAMES = {"0": "待审核", CHECK_APPROVED: "审核通过", "2": "审核不通过"}
_USED_NAMES = {USED_NOT_YET: "未取药", USED_DISPENSED: "已取药"}


@dataclass
class RxRecord:
    """One prescription as the center holds it."""

    hi_rxno: str
    rx_trace_code: str
    certno: str
    psn_name: str
    vali_end_time: datetime
    drugs: list[RxDrugLine]
    status: str = STATUS_VALID
    check: str = CHECK_APPROVED
    used: str = USED_NOT_YET
    fixmedins_code: str = "H32010600001"
    fixmedins_name: str = "南京市鼓楼医院互联网医院"
    prsc_time: datetime = field(default_factory=lambda: datetime.now(BEIJING))
    hosp_rxno: str = ""
    setl_time: datetime | None = None

    def detail(self) -> dict[str, Any]:
        return {
            "hiRxno": self.hi_rxno, "rxTraceCode": self.rx_trace_code,
            "fixmedinsCode": self.fixmedins_code, "fixmedinsName": self.fixmedins_name,
            "psnName": self.psn_name, "psnCertType": "01", "certno": self.certno,
            "prscTime": format_time(self.prsc_time),
            "valiEndTime": format_time(self.vali_end_time),
            "rxStasCodg": self.status, "rxStasName": _STATUS_NAMES.get(self.status, ""),
            "rxChkStasCodg": self.check, "rxUsedStasCodg": self.used,
            "rxdrugdetail": [d.wire() for d in self.drugs]}


@dataclass
class RxCenter:
    """The center's book, keys and switches."""

    keys: PrescriptionKeys
    """The center's side: its SM2 pair, the hub's public key as the peer."""
    max_skew_s: int = 300
    state: SimState = field(default_factory=SimState)
    prescriptions: dict[str, RxRecord] = field(default_factory=dict)
    queries: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    """Requests of the hub refused, per cause (signature, stale, replay...)."""
    answers: list[dict[str, Any]] = field(default_factory=list)
    """Answers sent (the first and the last few: the duplicate and replay switches)."""
    seen_requests: set[str] = field(default_factory=set)
    certno: str = ""
    """``seeded``: the person the prescriptions are for, and another person."""
    psn_name: str = ""
    other_certno: str = ""
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.crypto = self.keys.crypto()
        private, public = sm2_generate()  # a stranger's key: the wrong_key switch
        self.stranger = SmCrypto(private_key=private, public_key=public,
                                 peer_public_key=self.keys.peer_public_key,
                                 sm4_key=self.keys.sm4_key)
        self.other_sm4 = SmCrypto(private_key=self.keys.private_key,
                                  public_key=self.keys.public_key,
                                  peer_public_key=self.keys.peer_public_key,
                                  sm4_key=sm4_key_generate())

    def add(self, hi_rxno: str, *, certno: str, psn_name: str,
            drugs: Mapping[str, Decimal | int | str] | None = None, valid_days: float = 3.0,
            status: str = STATUS_VALID, check: str = CHECK_APPROVED,
            used: str = USED_NOT_YET) -> RxRecord:
        """A prescription held by the center; ``drugs``: 医保药品目录编码 -> quantity (the
        names from ``CATALOGUE`` where known). ``valid_days`` negative: already expired."""
        lines = []
        for code, qty in (drugs or {"XA10BAA017A001010101445": 2}).items():
            name, spec = CATALOGUE.get(code, (f"药品{code[-4:]}", ""))
            lines.append(RxDrugLine(med_list_codg=code, drug_genname=name, drug_spec=spec,
                                    drug_totlcnt=Decimal(qty), drug_totlcnt_emp="盒"))
        now = datetime.now(BEIJING).replace(microsecond=0)
        record = RxRecord(hi_rxno=hi_rxno, rx_trace_code=f"TR{hi_rxno}", certno=certno,
                          psn_name=psn_name, vali_end_time=now + timedelta(days=valid_days),
                          drugs=lines, status=status, check=check, used=used)
        self.prescriptions[hi_rxno] = record
        return record

    @classmethod
    def seeded(cls, keys: PrescriptionKeys, *, max_skew_s: int = 300,
               rng_seed: int = 11) -> RxCenter:
        """A center holding one prescription in each state a sale must handle:
        ``RX-VALID``, ``RX-EXPIRED`` (valiEndTime passed), ``RX-LAPSED`` (status 已失效),
        ``RX-REVOKED``, ``RX-DISPENSED``, ``RX-UNREVIEWED``, and ``RX-OTHER`` (valid, for
        ``other_certno``); all but the last for ``certno``."""
        center = cls(keys=keys, max_skew_s=max_skew_s)
        rng = random.Random(rng_seed)
        center.certno, center.psn_name = make_id_number(rng), "王小明"
        center.other_certno = make_id_number(rng)
        me, name = center.certno, center.psn_name
        center.add("RX-VALID", certno=me, psn_name=name,
                   drugs={"XA10BAA017A001010101445": 2, "XC09AAA068A001010100722": 1})
        center.add("RX-EXPIRED", certno=me, psn_name=name, valid_days=-1)
        center.add("RX-LAPSED", certno=me, psn_name=name, status=STATUS_EXPIRED)
        center.add("RX-REVOKED", certno=me, psn_name=name, status=STATUS_REVOKED)
        center.add("RX-DISPENSED", certno=me, psn_name=name, used=USED_DISPENSED)
        center.add("RX-UNREVIEWED", certno=me, psn_name=name, check="0")
        center.add("RX-OTHER", certno=center.other_certno, psn_name="李红")
        return center

    def revoke(self, hi_rxno: str) -> None:
        self.prescriptions[hi_rxno].status = STATUS_REVOKED

    def dispense(self, hi_rxno: str) -> None:
        record = self.prescriptions[hi_rxno]
        record.used, record.setl_time = USED_DISPENSED, datetime.now(BEIJING)

    # -- the exchange ----------------------------------------------------------------------

    def _seal(self, code: int, message: str, data: dict[str, Any] | None, *,
              crypto: SmCrypto | None = None, timestamp: int | None = None,
              app_id: str | None = None) -> dict[str, Any]:
        return seal(data, app_id=app_id or self.keys.app_id, app_secret=self.keys.app_secret,
                    timestamp=int(time.time()) if timestamp is None else timestamp,
                    crypto=crypto or self.crypto, code=code, message=message)

    def _remember(self, answer: dict[str, Any]) -> dict[str, Any]:
        self.answers.append(answer)
        if len(self.answers) > 50:
            del self.answers[1:-20]
        return answer

    def _tampered(self, fault: Fault, code: int, message: str,
                  data: dict[str, Any] | None) -> dict[str, Any]:
        """An answer the hub must refuse (``bad_signature``, ``Fault.code`` says how)."""
        how = fault.code
        if how == "wrong_key":
            return self._seal(code, message, data, crypto=self.stranger)
        if how == "replay" and self.answers:
            return dict(self.answers[0])
        if how == "stale":
            return self._seal(code, message, data,
                              timestamp=int(time.time()) - self.max_skew_s - 120)
        if how == "wrong_app":
            return self._seal(code, message, data, app_id=self.keys.app_id + "-x")
        if how == "wrong_sm4":
            return self._seal(code, message, data, crypto=self.other_sm4)
        answer = self._seal(code, message, data)
        if how == "garbage":
            answer["encData"] = b64(os.urandom(48))
            return answer
        raw = bytearray(base64.b64decode(answer["signData"]))
        raw[5] ^= 0x55
        answer["signData"] = b64(bytes(raw))
        return answer

    async def handle(self, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) for one request of the hub."""
        try:
            opened = open_envelope(body, app_id=self.keys.app_id,
                                   app_secret=self.keys.app_secret, crypto=self.crypto,
                                   now_s=int(time.time()), max_skew_s=self.max_skew_s,
                                   answer=False)
        except PrescriptionRefused as exc:
            self.refused[exc.cause] += 1
            return 200, self._seal(4001, f"验签失败: {exc.reason}", None)
        nonce = f"{opened.timestamp}:{opened.sign_data}"
        if nonce in self.seen_requests:
            self.refused["replay"] += 1
            return 200, self._seal(4002, "重复请求", None)
        self.seen_requests.add(nonce)
        try:
            request = MODELS[path][0].model_validate(opened.data or {})
        except ValidationError as exc:
            self.refused["field"] += 1
            field_name, why = field_errors(exc, first_only=True)[0]
            return 200, self._seal(4003, f"{field_name}: {why}", None)
        key = str(getattr(request, "hi_rxno", "") or getattr(request, "hosp_rxno", ""))
        fault = self.state.draw(key, path)
        if fault is not None and fault.kind == "http_5xx":
            return 503, {"detail": "prescription center unavailable (simulated)"}
        if fault is not None and fault.kind == "http_4xx":
            return 400, {"detail": fault.text}
        await self.state.sleep_for(fault)
        if fault is not None and fault.kind == "duplicate" and self.answers:
            return 200, dict(self.answers[-1])
        if fault is not None and fault.kind == "reject":
            code = int(fault.code) if fault.code.lstrip("-").isdigit() else 9999
            return 200, self._remember(self._seal(code, fault.text, None))
        code, message, data = self._answer(path, request)
        if fault is not None and fault.kind == "bad_signature":
            return 200, self._tampered(fault, code, message, data)
        return 200, self._remember(self._seal(code, message, data))

    def _answer(self, path: str, request: RxBody) -> tuple[int, str, dict[str, Any] | None]:
        w = request.wire()
        if path in (HOSP_RX_DETL_QUERY, RX_CHK_INFO_QUERY, RX_SETL_INFO_QUERY):
            self.queries[path] += 1
            record = self.prescriptions.get(w["hiRxno"])
            if record is None:
                return NOT_FOUND_CODE, "处方不存在", None
            if path == HOSP_RX_DETL_QUERY:
                return OK_CODE, "成功", record.detail()
            if path == RX_CHK_INFO_QUERY:
                return OK_CODE, "成功", {
                    "hiRxno": record.hi_rxno, "rxChkStasCodg": record.check,
                    "rxChkStasName": _CHECK_NAMES.get(record.check, ""),
                    "rxChkOpnn": "通过" if record.check == CHECK_APPROVED else "",
                    "rxChkTime": format_time(record.prsc_time), "pharName": "药师甲"}
            return OK_CODE, "成功", {
                "hiRxno": record.hi_rxno, "rxUsedStasCodg": record.used,
                "rxUsedStasName": _USED_NAMES.get(record.used, ""),
                "setlTime": format_time(record.setl_time) if record.setl_time else "",
                "medinsName": "南京医药大药房" if record.used == USED_DISPENSED else "",
                "seltdelts": [d.wire() for d in record.drugs]
                if record.used == USED_DISPENSED else []}
        if path == CIRC_DRUG_QUERY:
            self.queries[path] += 1
            rows = [{"medListCodg": c, "drugGenname": n, "drugSpec": s}
                    for c, (n, s) in CATALOGUE.items()
                    if not w.get("medListCodg") or w["medListCodg"] == c]
            return OK_CODE, "成功", {"total": len(rows), "data": rows}
        return self._mutate(path, w)

    def _effect(self, key: str) -> bool:
        """Record a side effect once; a repeat is a replay (True: first time)."""
        if self.state.log.effects.get(key):
            self.state.log.replays += 1
            return False
        self.state.log.record(key)
        return True

    def _mutate(self, path: str, w: dict[str, Any]) -> tuple[int, str, dict[str, Any] | None]:
        if path == UPLOAD_CHK:
            existing = next((r for r in self.prescriptions.values()
                             if r.hosp_rxno == w["hospRxno"]), None)
            self._effect(f"{UPLOAD_CHK}:{w['hospRxno']}")
            if existing is None:
                number = f"RX{next(self._numbers):08d}"
                existing = self.add(number, certno=w["certno"], psn_name=w["psnName"],
                                    drugs={d["medListCodg"]: d["drugTotlcnt"]
                                           for d in w["rxdrugdetail"]},
                                    valid_days=w.get("valiDays", 3), check="0")
                existing.hosp_rxno = w["hospRxno"]
            return OK_CODE, "成功", {"hiRxno": existing.hi_rxno,
                                     "rxTraceCode": existing.rx_trace_code}
        if path == RX_FIXMEDINS_SIGN:
            digest = sm3(w["originalValue"].encode()).hex()
            self._effect(f"sign:{digest}")
            return OK_CODE, "成功", {"rxFile": w["originalValue"], "signDigest": digest,
                                     "signCertSn": "SIM0001", "signCertDn": "CN=sim"}
        record = self.prescriptions.get(w["hiRxno"])
        if record is None:
            return NOT_FOUND_CODE, "处方不存在", None
        if path == RX_FILE_UPLD:
            if self._effect(f"{RX_FILE_UPLD}:{record.hi_rxno}"):
                record.check = CHECK_APPROVED
        elif path == RX_UNDO:
            if record.used == USED_DISPENSED:
                return 3001, "处方已取药，不能撤销", None
            if self._effect(f"{RX_UNDO}:{record.hi_rxno}"):
                record.status = STATUS_REVOKED
        return OK_CODE, "成功", {"hiRxno": record.hi_rxno, "rxStasCodg": record.status,
                                 "rxStasName": _STATUS_NAMES.get(record.status, "")}


def create_app(center: RxCenter) -> FastAPI:
    app = FastAPI(title="电子处方中心 simulator (F11)")
    app.state.center = center
    app.include_router(sim_router(center.state))

    @app.post("/epc/api/fixmedins/{path}")
    async def exchange(path: str, request: Request) -> JSONResponse:
        if path not in PATHS:
            return JSONResponse({"detail": f"no such path {path}"}, status_code=404)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"detail": "body is not JSON"}, status_code=400)
        status, answer = await center.handle(path, body)
        return JSONResponse(answer, status_code=status)

    return app


@dataclass
class PrescriptionSim:
    """The harness's handle (``sims["prescription"]``)."""

    url: str
    center: RxCenter
    hub_keys: PrescriptionKeys

    @property
    def state(self) -> SimState:
        return self.center.state

    def switch(self, kind: FaultKind, how: str = "E999", *, count: int | None = 1,
               match: str = "", operation: str = "", delay_s: float = 0.0,
               text: str = "simulated rejection") -> Fault:
        """Turn a failure on (``kind``; for ``bad_signature`` and ``reject`` ``how`` goes
        into ``Fault.code``: see the module docstring). Same as ``POST /_sim/faults``."""
        fault = Fault(kind=kind, code=how, count=count, match=match, operation=operation,
                      delay_s=delay_s, text=text)
        self.center.state.faults.append(fault)
        return fault


async def start_prescription(stack: contextlib.AsyncExitStack, s: HubSettings,
                             sims: dict[str, Any]) -> HubSettings:
    """Serve a seeded center with keys made now; the settings the hub needs to reach it."""
    hub_keys, center_keys = generate_keys(s.prescription.app_id or "nj-hub-test")
    center = RxCenter.seeded(center_keys, max_skew_s=s.prescription.max_skew_s)
    url = await stack.enter_async_context(serve_app(create_app(center)))
    sims["prescription"] = PrescriptionSim(url, center, hub_keys)
    base = s.partners.get("prescription") or PartnerConfig(protocol="signed-json",
                                                           endpoint=url, timeout_s=2.0)
    partners = {**s.partners, "prescription": base.model_copy(update={"endpoint": url})}
    return s.model_copy(update={"partners": partners,
                                "prescription": with_keys(s.prescription, hub_keys)})


async def serve_center(stack: contextlib.AsyncExitStack, settings: HubSettings,
                       host: str = "127.0.0.1") -> str:
    """``main.py simulate``: a seeded center on ``prescription.sim_port`` with the
    development key set (``dev_keys``, shared with a development hub). Not started (empty
    URL) when the hub's keys are configured: this center has no matching private key."""
    p = settings.prescription
    if p.center_public_key:
        return ""
    center = RxCenter.seeded(dev_keys(p.dev_keys_file)[1], max_skew_s=p.max_skew_s)
    return await stack.enter_async_context(serve_app(create_app(center), host=host,
                                                     port=p.sim_port))
