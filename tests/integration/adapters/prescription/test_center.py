"""PrescriptionClient against the simulated 电子处方中心 over real HTTP: every prescription
state, every failure switch, and the center's own checks of the hub's requests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from adapters.prescription.client import (
    PrescriptionClient,
    build_prescription_client,
    generate_keys,
    with_keys,
)
from config.settings import load_settings
from contracts.errors import BusinessRejected, PartnerTimeout, PartnerUnavailable
from contracts.prescription import (
    RX_UNDO,
    UPLOAD_CHK,
    PrescriptionRefused,
    RxDrugLine,
    RxUndoIn,
    UploadChkIn,
)
from simulators.prescription import RxCenter, create_app, serve_center
from simulators.serving import serve_app
from simulators.simkit import Fault

pytestmark = pytest.mark.integration


@dataclass
class Pair:
    center: RxCenter
    client: PrescriptionClient
    url: str


@contextlib.asynccontextmanager
async def pair(timeout_s: float = 2.0) -> AsyncIterator[Pair]:
    hub, center_keys = generate_keys("hub-it")
    center = RxCenter.seeded(center_keys, max_skew_s=60)
    async with serve_app(create_app(center)) as url:
        client = PrescriptionClient(endpoint=url, keys=hub, fixmedins_code="P32010000001",
                                    timeout_s=timeout_s, max_skew_s=60)
        try:
            yield Pair(center, client, url)
        finally:
            await client.aclose()


async def test_each_prescription_state_as_the_port_reports_it() -> None:
    async with pair() as p:
        ok = await p.client.query_prescription("RX-VALID")
        assert (ok.found, ok.valid, ok.reason) == (True, True, "")
        assert ok.id_number == p.center.certno and ok.patient_name == "王小明"
        assert {d.med_list_codg: d.quantity for d in ok.drugs} == {
            "XA10BAA017A001010101445": 2, "XC09AAA068A001010100722": 1}
        assert ok.expires_at is not None and ok.expires_at.utcoffset() is not None
        reasons = {rx: (await p.client.query_prescription(rx)).reason for rx in (
            "RX-EXPIRED", "RX-LAPSED", "RX-REVOKED", "RX-DISPENSED", "RX-UNREVIEWED")}
        assert reasons == {"RX-EXPIRED": "expired", "RX-LAPSED": "expired",
                           "RX-REVOKED": "revoked", "RX-DISPENSED": "dispensed",
                           "RX-UNREVIEWED": "not reviewed"}
        other = await p.client.query_prescription("RX-OTHER")
        assert other.valid and other.id_number == p.center.other_certno != p.center.certno
        missing = await p.client.query_prescription("RX-NONE")
        assert (missing.found, missing.valid) == (False, False)
        review = await p.client.review("RX-UNREVIEWED")
        assert review is not None and review.rx_chk_stas_codg == "0"
        p.center.dispense("RX-VALID")
        setl = await p.client.dispensing("RX-VALID")
        assert setl is not None and setl.rx_used_stas_codg == "1" and setl.seltdelts
        assert (await p.client.query_prescription("RX-VALID")).reason == "dispensed"
        assert p.center.queries["hospRxDetlQuery"] == 9 and sum(p.center.refused.values()) == 0


@pytest.mark.parametrize(("how", "cause"), [
    ("signature", "signature"), ("wrong_key", "signature"), ("stale", "stale"),
    ("garbage", "decrypt"), ("wrong_sm4", "decrypt"), ("wrong_app", "app_id")])
async def test_an_answer_that_does_not_verify_is_refused(how: str, cause: str) -> None:
    async with pair() as p:
        p.center.state.faults.append(Fault(kind="bad_signature", code=how, count=1))
        with pytest.raises(PrescriptionRefused) as e:
            await p.client.query_prescription("RX-VALID")
        assert e.value.cause == cause and p.client.refused == 1
        # the switch spent, the next answer verifies and is passed on
        assert (await p.client.query_prescription("RX-VALID")).valid


async def test_replayed_and_duplicated_answers_are_refused() -> None:
    async with pair() as p:
        first = await p.client.query_prescription("RX-VALID")
        assert first.valid
        p.center.state.faults.append(Fault(kind="duplicate", count=1))
        with pytest.raises(PrescriptionRefused) as e:
            await p.client.query_prescription("RX-VALID")
        assert e.value.cause == "replay"
        await p.client.query_prescription("RX-OTHER")
        # the first answer ever sent, for another query: replayed, refused before use
        p.center.state.faults.append(Fault(kind="bad_signature", code="replay", count=1))
        with pytest.raises(PrescriptionRefused) as e:
            await p.client.query_prescription("RX-REVOKED")
        assert e.value.cause == "replay" and p.client.refused == 2


async def test_transport_and_business_switches() -> None:
    async with pair(timeout_s=0.5) as p:
        sim = p.center.state
        sim.faults.append(Fault(kind="http_5xx", count=1))
        with pytest.raises(PartnerUnavailable):
            await p.client.detail("RX-VALID")
        sim.faults.append(Fault(kind="timeout", delay_s=1.0, count=1))
        with pytest.raises(PartnerTimeout):
            await p.client.detail("RX-VALID")
        sim.faults.append(Fault(kind="reject", code="5001", text="处方中心维护中", count=1))
        with pytest.raises(BusinessRejected) as e:
            await p.client.detail("RX-VALID")
        assert e.value.reason_code == "5001" and "维护" in e.value.reason_text
        sim.faults.append(Fault(kind="slow", delay_s=0.1, count=1))
        assert (await p.client.query_prescription("RX-VALID")).valid
        # switches over HTTP, as the demo and the other flows flip them
        async with httpx.AsyncClient() as http:
            r = await http.post(f"{p.url}/_sim/faults", json={"kind": "bad_signature",
                                                              "code": "wrong_key"})
            assert r.status_code == 200
            with pytest.raises(PrescriptionRefused):
                await p.client.detail("RX-VALID")
            await http.delete(f"{p.url}/_sim/faults")
        assert (await p.client.detail("RX-VALID")) is not None


async def test_the_center_refuses_requests_it_cannot_verify_and_counts_effects_once() -> None:
    async with pair() as p:
        stranger, _ = generate_keys("hub-it")  # another hub key: the center does not know it
        imposter = PrescriptionClient(endpoint=p.url, keys=stranger, fixmedins_code="P1")
        with pytest.raises(PrescriptionRefused):  # its answer is not for the imposter either
            await imposter.detail("RX-VALID")
        await imposter.aclose()
        assert sum(p.center.refused.values()) == 1 and p.center.queries["hospRxDetlQuery"] == 0
        chk = UploadChkIn(
            fixmedins_code="H1", fixmedins_name="医院", hosp_rxno="H-RX-1",
            prsc_time="2026-01-01 10:00:00", vali_end_time="2026-01-04 10:00:00",
            certno=p.center.certno, psn_name="王小明",
            rxdrugdetail=[RxDrugLine(med_list_codg="XA10BAA017A001010101445",
                                     drug_genname="二甲双胍片", drug_totlcnt=2)])
        one = await p.client.call(UPLOAD_CHK, chk)
        two = await p.client.call(UPLOAD_CHK, chk)
        assert one.data is not None and two.data is not None
        assert one.data["hiRxno"] == two.data["hiRxno"]
        undo = RxUndoIn(hi_rxno="RX-VALID", fixmedins_code="H1", undo_rea="开错",
                        undo_time="2026-01-01 11:00:00")
        await p.client.call(RX_UNDO, undo)
        await p.client.call(RX_UNDO, undo)
        log = p.center.state.log
        assert log.effects["uploadChk:H-RX-1"] == 1 and log.effects["rxUndo:RX-VALID"] == 1
        assert log.replays == 2
        assert (await p.client.query_prescription("RX-VALID")).reason == "revoked"


async def test_make_simulate_center_and_a_development_hub_share_the_generated_keys(
        tmp_path: Path) -> None:
    s = load_settings(env={"HUB_ENV": "development",
                           "HUB_PRESCRIPTION__DEV_KEYS_FILE": str(tmp_path / "keys.json")})
    s = s.model_copy(update={"prescription": s.prescription.model_copy(update={"sim_port": 0})})
    async with contextlib.AsyncExitStack() as stack:
        url = await serve_center(stack, s)
        partner = s.partners["prescription"].model_copy(update={"endpoint": url})
        client = build_prescription_client(s.model_copy(
            update={"partners": {**s.partners, "prescription": partner}}))
        try:
            assert (await client.query_prescription("RX-VALID")).valid
        finally:
            await client.aclose()
    keys = with_keys(s.prescription, generate_keys()[0])
    configured = s.model_copy(update={"prescription": keys})
    async with contextlib.AsyncExitStack() as stack:
        assert await serve_center(stack, configured) == ""
