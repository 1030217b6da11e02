"""The trade union's side of F12 (工会互助): the city union (市总工会) and its applicant units.

Both directions, over real sockets:

- **it sends** (``UnionSide``): the year's tables (``PUT /partners/union/standards``),
  cases with their scanned images (``POST /partners/union/cases``) and the 终审结案
  (``POST /partners/union/cases/{no}/final``), each signed as partner ``trade_union``;
  ``make_case`` builds a synthetic case with real JPG/TIF headers (``make_jpeg``,
  ``make_tiff``: colour 150 dpi, black-and-white 300 dpi, or wrong on purpose);
- **it receives** (``create_app``): the hub's notices at ``POST /union/notices``
  (受理结果 for the unit and for the city union, the 结案 result file, 档案返还). The
  hub's signature is checked (401 otherwise, counted), a result file is parsed by the
  agreed layout (``contracts.union.parse_closure_file``; 400 if it does not read), a
  repeated ``X-Hub-Serial`` is a replay, and each notice is an effect in
  ``SimState.log`` keyed ``<kind>:<recipient>:<case_no>``, so tests count at the union.

Faults from ``/_sim/faults`` (``operation`` = notice kind): http_5xx 503, http_4xx 400,
slow (answer after the delay), timeout (take the notice, then sleep: the hub gives
up and sends again), duplicate (take it, answer 503: the repeat must be a replay).
"""

from __future__ import annotations

import base64
import json
import random
import struct
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from adapters.signing import MemoryNonceStore, SignedAuth, verify_signed
from contracts.ids import make_id_number
from contracts.signing import PARTNER_HEADERS, SignatureRefused, request_target
from contracts.union import parse_closure_file
from simulators.simkit import SimState, sim_router

__all__ = ["PARTNER", "UnionInbox", "UnionSide", "create_app", "make_case", "make_jpeg",
           "make_standards", "make_tiff"]

PARTNER = "trade_union"


# -- synthetic scans ---------------------------------------------------------------------

def make_jpeg(dpi: int = 150, *, colour: bool = True, salt: int = 0) -> bytes:
    """A tiny JPEG whose headers say what a scanner writes: JFIF density, frame components."""
    app0 = b"JFIF\x00\x01\x02\x01" + struct.pack(">HH", dpi, dpi) + b"\x00\x00"
    n = 3 if colour else 1
    sof = struct.pack(">BHHB", 8, 1000 + salt % 1000, 700, n) + b"".join(
        bytes([i + 1, 0x11, 0]) for i in range(n))
    com = f"scan {salt}".encode()
    return (b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", len(app0) + 2) + app0
            + b"\xff\xfe" + struct.pack(">H", len(com) + 2) + com
            + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xd9")


def make_tiff(dpi: int = 300, *, bilevel: bool = True, salt: int = 0) -> bytes:
    """A tiny little-endian TIFF: one directory with bits, photometric and resolution."""
    entries = [(256, 3, 1, 1000 + salt % 1000), (257, 3, 1, 700),
               (258, 3, 1, 1 if bilevel else 8), (262, 3, 1, 0 if bilevel else 2),
               (282, 5, 1, 0), (283, 5, 1, 0), (296, 3, 1, 2)]
    ifd_at = 8
    rational_at = ifd_at + 2 + 12 * len(entries) + 4
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd_at))
    out += struct.pack("<H", len(entries))
    for i, (tag, typ, count, value) in enumerate(entries):
        if typ == 5:
            out += struct.pack("<HHII", tag, typ, count, rational_at + 8 * (i - 4))
        else:
            out += struct.pack("<HHIHH", tag, typ, count, value, 0)
    out += struct.pack("<I", 0)
    out += struct.pack("<II", dpi, 1) + struct.pack("<II", dpi, 1)
    return bytes(out)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- synthetic cases ---------------------------------------------------------------------

def make_standards(members: list[dict[str, str]]) -> dict[str, Any]:
    """The union's tables: the roster given, two major diseases, the agreed window."""
    return {"roster": members,
            "benefits": {"C50": {"disease_name": "恶性肿瘤", "deductible": "1000.00",
                                 "ratio": "0.5", "cap": "50000.00"},
                         "I21": {"disease_name": "急性心肌梗塞", "deductible": "500.00",
                                 "ratio": "0.6", "cap": "30000.00"}},
            "rules": {"max_days_after_diagnosis": 365}}


def make_member(rng: random.Random, unit_code: str) -> dict[str, str]:
    return {"id_number": make_id_number(rng), "name": rng.choice("赵钱孙李周吴郑王") + "某某",
            "unit_code": unit_code}


def make_case(case_no: str, member: dict[str, str], *, year: int, complete_on: date,
              urgent: bool = False, bills: int = 2, images: list[dict[str, str]] | None = None,
              disease: str = "C50") -> dict[str, Any]:
    """A complete 给付申请书: required image classes (colour JPG and black-and-white TIF)."""
    diagnosed = complete_on - timedelta(days=40)
    pages = images if images is not None else [
        {"name": f"{case_no}_SQS_01.jpg", "category": "SQS",
         "content": _b64(make_jpeg(150, salt=1))},
        {"name": f"{case_no}_SFZ_01.jpg", "category": "SFZ",
         "content": _b64(make_jpeg(150, salt=2))},
        {"name": f"{case_no}_ZDZM_01.tif", "category": "ZDZM",
         "content": _b64(make_tiff(300, salt=3))},
        {"name": f"{case_no}_FP_01.tif", "category": "FP", "content": _b64(make_tiff(300, salt=4))},
        {"name": f"{case_no}_FP_02.tif", "category": "FP", "content": _b64(make_tiff(300, salt=5))},
    ]
    return {
        "case_no": case_no, "year": year, "coverage": "重大疾病", "unit_code": member["unit_code"],
        "unit_name": "南京某某有限公司", "urgent": urgent, "complete_on": complete_on.isoformat(),
        "applicant": {"name": member["name"], "id_number": member["id_number"],
                      "phone": "13800001234"},
        "accident": {"disease_code": disease, "disease_name": "恶性肿瘤",
                     "diagnosed_on": diagnosed.isoformat()},
        "treatments": [{"hospital": "南京市第一医院", "kind": "住院",
                        "admitted_on": (diagnosed + timedelta(days=1)).isoformat(),
                        "discharged_on": (diagnosed + timedelta(days=15)).isoformat()}],
        "bills": [{"bill_no": f"B{case_no[-6:]}{i}", "issued_on": (diagnosed + timedelta(
            days=15 + i)).isoformat(), "total": "12000.00", "insurance_paid": "8000.00",
            "self_paid": "4000.00"} for i in range(bills)],
        "images": pages,
    }


# -- the union's sending side ------------------------------------------------------------

@dataclass
class UnionSide:
    """The city union calling the hub, signed as ``trade_union``."""

    hub_url: str
    secret: str

    def _auth(self) -> SignedAuth:
        return SignedAuth(PARTNER, self.secret)

    async def put_standards(self, http: httpx.AsyncClient, year: int,
                            tables: dict[str, Any]) -> httpx.Response:
        return await http.put(f"{self.hub_url}/partners/union/standards/{year}", json=tables,
                              auth=self._auth())

    async def submit(self, http: httpx.AsyncClient, case: dict[str, Any]) -> httpx.Response:
        return await http.post(f"{self.hub_url}/partners/union/cases", json=case,
                               auth=self._auth())

    async def final(self, http: httpx.AsyncClient, case_no: str, final_on: date,
                    conclusion: str = "给付") -> httpx.Response:
        return await http.post(f"{self.hub_url}/partners/union/cases/{case_no}/final",
                               json={"final_on": final_on.isoformat(),
                                     "conclusion": conclusion}, auth=self._auth())


# -- the union's receiving side ----------------------------------------------------------

@dataclass
class UnionInbox:
    """What the union side received, per case: notices by ``<kind>:<recipient>``."""

    cases: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    serials: set[str] = field(default_factory=set)
    bad_signatures: int = 0
    bad_files: int = 0

    def of(self, case_no: str) -> dict[str, dict[str, Any]]:
        return self.cases.get(case_no, {})


def create_app(secret: str, state: SimState | None = None,
               inbox: UnionInbox | None = None) -> FastAPI:
    """The union's notice endpoint; ``app.state.inbox`` is what it received."""
    sim = state or SimState()
    box = inbox or UnionInbox()
    nonces = MemoryNonceStore()
    app = FastAPI(title="Trade-union simulator (市总工会 and applicant units)")
    app.state.sim, app.state.inbox = sim, box
    app.include_router(sim_router(sim))

    @app.post("/union/notices")
    async def notices(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            await verify_signed(PARTNER, secret, method=request.method,
                                target=request_target(request.scope), headers=request.headers,
                                body=body, nonces=nonces, names=PARTNER_HEADERS,
                                scope="hub")
        except SignatureRefused as exc:
            box.bad_signatures += 1
            return JSONResponse({"detail": exc.errors[0][1]}, 401)
        notice = json.loads(body)
        kind, case_no = str(notice.get("kind")), str(notice.get("case_no"))
        key = f"{kind}:{notice.get('recipient')}:{case_no}"
        serial = request.headers.get("X-Hub-Serial", "")
        if notice.get("resend"):  # 补发: a second delivery on purpose, its own effect
            key += f":resend:{serial[:12]}"
        fault = sim.draw(case_no, operation=kind)
        what = fault.kind if fault else None
        if what in ("http_5xx", "soap_fault"):
            return JSONResponse({"detail": "union unavailable (simulated)"}, 503)
        if what == "http_4xx":
            return JSONResponse({"detail": "bad request (simulated)"}, 400)
        if what == "slow":
            await sim.sleep_for(fault)
        if kind == "closure":
            try:
                parsed = parse_closure_file(str(notice.get("file_text", "")))
            except ValueError as exc:
                box.bad_files += 1
                return JSONResponse({"detail": f"result file: {exc}"}, 400)
            notice["parsed"] = parsed.model_dump(mode="json")
        if serial and serial in box.serials:
            sim.log.replays += 1
        else:
            box.serials.add(serial)
            box.cases.setdefault(case_no, {})[f"{kind}:{notice.get('recipient')}"] = notice
            sim.log.record(key, entity=case_no, value=f"{kind}:{notice.get('decision')}")
        if what == "duplicate":
            return JSONResponse({"detail": "lost answer (simulated)"}, 503)
        if what == "timeout":
            await sim.sleep_for(fault)
        return JSONResponse({"code": 0, "msg": "received"})

    @app.get("/union/cases/{case_no}")
    async def case(case_no: str) -> dict[str, Any]:
        return box.of(case_no)

    return app


def with_union(settings: Any, url: str, secret: str) -> Any:
    """``settings`` whose ``partners.trade_union`` points at the simulator at ``url``, with
    ``secret`` (the harness's; its retry policy kept, else the default one)."""
    from config.settings import PartnerConfig

    partners = dict(settings.partners)
    old = partners.get(PARTNER)
    base = old.model_dump() if old is not None else {"protocol": "rest", "timeout_s": 2.0}
    partners[PARTNER] = PartnerConfig(**{**base, "endpoint": url, "secret": secret})
    return settings.model_copy(update={"partners": partners})
