"""Bench: 职工参保登记 SOAP build + ack parse per second, lean lxml codec vs zeep, one core.

Both paths do the same work per message and no network: map an
``EmployeeEnrollment`` to the wire, serialise the envelope to bytes, then read
a canned 受理回执 into a ``TaxAck``. zeep uses ``create_message`` and the
binding's ``process_reply``, i.e. exactly what ``ZeepTaxClient`` runs around
its HTTP call. The process is pinned to one CPU where the OS allows it.

    .venv/bin/python -m bench.soap [--seconds 2.5]

The last line is machine-readable: ``soap: per_s=N path=lean zeep_per_s=Z``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # allow `python bench/soap.py` as well as `-m bench.soap`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests
import zeep
from zeep.wsdl.utils import etree_to_string

from adapters.tax.soap import (
    SOAP_CONTENT_TYPE,
    TAX_WSDL,
    build_ack,
    build_enroll_request,
    enroll_fields,
    parse_ack,
)
from contracts.clock import BEIJING
from contracts.employee import EmployeeEnrollment, TaxAck
from tests.support.zeep_tax import BINDING

__all__ = ["bench_lean", "bench_zeep", "main", "measure"]

FIXTURE = TAX_WSDL.parents[1] / "fixtures" / "tax" / "employee_enroll" / "001_ok.input.json"
SERIAL = "tax.employee_enroll:0123456789abcdef0123456789abcdef"
SENT_AT = datetime(2025, 1, 15, 9, 30, tzinfo=BEIJING)
ACK = build_ack("S", "000000", "受理成功", "SL202501150000000001")


def measure(step: Callable[[], object], seconds: float, batch: int = 200) -> float:
    """Messages per second of ``step`` over about ``seconds`` (after a short warm-up)."""
    for _ in range(batch):
        step()
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            step()
        done += batch
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - start)


def bench_lean(req: EmployeeEnrollment) -> Callable[[], TaxAck]:
    def step() -> TaxAck:
        build_enroll_request(req, SERIAL, sent_at=SENT_AT)
        return parse_ack(ACK)
    return step


def bench_zeep(req: EmployeeEnrollment) -> Callable[[], TaxAck]:
    settings = zeep.Settings(strict=True, xml_huge_tree=False, forbid_dtd=True,
                             forbid_entities=True, forbid_external=True)
    client: Any = zeep.Client(str(TAX_WSDL), settings=settings)  # type: ignore[no-untyped-call]
    service = client.create_service(BINDING, "http://bench.invalid/tax/ws")
    binding = client.wsdl.bindings[BINDING]
    operation = binding.get("EmployeeEnroll")
    canned = requests.Response()
    canned.status_code = 200
    canned._content = ACK
    canned.headers["Content-Type"] = SOAP_CONTENT_TYPE

    def step() -> TaxAck:
        head, body = enroll_fields(req, SERIAL, sent_at=SENT_AT)
        envelope = client.create_message(service, "EmployeeEnroll", head=head, body=body)
        etree_to_string(envelope)  # type: ignore[no-untyped-call]
        result = binding.process_reply(client, operation, canned)
        return TaxAck(accept_no=result.slh, ret_code=result.retCode, ret_msg=result.retMsg or "")
    return step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=2.5, help="per path (default 2.5)")
    args = parser.parse_args(argv)
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    req = EmployeeEnrollment.model_validate_json(FIXTURE.read_text(encoding="utf-8"))
    lean, zeep_ = bench_lean(req), bench_zeep(req)
    assert lean() == zeep_(), "both paths must read the same acknowledgement"
    lean_per_s = measure(lean, args.seconds)
    zeep_per_s = measure(zeep_, args.seconds)
    print(json.dumps({"bench": "soap", "operation": "EmployeeEnroll", "seconds": args.seconds,
                      "lean_per_s": round(lean_per_s), "zeep_per_s": round(zeep_per_s),
                      "ratio": round(lean_per_s / zeep_per_s, 1),
                      "python": sys.version.split()[0]}))
    print(f"soap: per_s={round(lean_per_s)} path=lean zeep_per_s={round(zeep_per_s)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
