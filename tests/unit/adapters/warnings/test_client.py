"""F8 on the wire, in process: the hub's department client against the departments'
simulator (signed, deduplicated on the serial, errors mapped), and core's H1107."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from adapters.core.client import CoreClient
from adapters.core.translate import self_paid_from_output, self_paid_to_wire
from adapters.warnings.client import DepartmentClient
from config.warnings import WarningSettings
from contracts.errors import (
    BusinessRejected,
    ClientError,
    PartnerUnavailable,
    ValidationFailed,
)
from contracts.warnings import ExpenseWarning, SelfPaid, warning_message
from simulators.core import CoreStore
from simulators.core import create_app as core_app
from simulators.simkit import Fault, SimState
from simulators.warnings_recv import WarningInbox, create_app, sample_people

ID = "32010219880928997X"
S = WarningSettings()


def payload(dept: str = "veterans") -> dict[str, object]:
    w = ExpenseWarning(department=dept, month="202611", kinds=("poverty",),  # type: ignore[arg-type]
                       line=Decimal(81250), person=SelfPaid(
                           id_number=ID, name="王小明", rural=False, insurance="resident",
                           self_paid=Decimal("90000.5"), categories=("veteran",)))
    return dict(warning_message(w).payload)


def _client(departments: dict[str, object] | None = None) -> tuple[
        DepartmentClient, SimState, WarningInbox]:
    state, inbox = SimState(), WarningInbox()
    app = create_app(S.departments, state, inbox)
    return DepartmentClient(departments or S.departments,  # type: ignore[arg-type]
                            development=True,
                            transport=httpx.ASGITransport(app=app)), state, inbox


async def test_a_signed_record_is_taken_once_and_a_repeat_replays_its_ack() -> None:
    client, state, inbox = _client()
    first = await client.send_warning("veterans", payload())
    again = await client.send_warning("veterans", payload())
    assert first == again and first.startswith("ACK-")
    rec = next(iter(inbox.of("veterans").values()))
    assert rec["person"]["certno"] == ID and rec["warning_types"] == ["因病致贫"]
    assert rec["person"]["self_pay_sumamt"] == "90000.50"
    assert sum(state.log.effects.values()) == 1 and state.log.replays == 1


async def test_a_wrong_key_is_refused_by_the_department() -> None:
    wrong = {n: d.model_copy(update={"secret": d.secret.__class__("nope")})
             for n, d in S.departments.items()}
    client, state, inbox = _client(wrong)
    with pytest.raises(ClientError, match="401"):
        await client.send_warning("veterans", payload())
    assert inbox.bad_signatures == 1 and not state.log.effects


async def test_faults_map_to_the_error_tree() -> None:
    client, state, _ = _client()
    state.faults[:] = [Fault(kind="http_5xx", count=1), Fault(kind="reject", count=1,
                                                              code="E7", text="not ours")]
    with pytest.raises(PartnerUnavailable):
        await client.send_warning("veterans", payload())
    with pytest.raises(BusinessRejected, match="not ours"):
        await client.send_warning("veterans", payload())
    assert await client.send_warning("veterans", payload())
    with pytest.raises(ClientError, match="not configured"):
        await DepartmentClient({}).send_warning("veterans", payload())
    # production without a configured key: nothing is signed with a development key
    with pytest.raises(ClientError, match="HUB_WARNINGS__DEPARTMENTS__VETERANS__SECRET"):
        await DepartmentClient(S.departments).send_warning("veterans", payload())


async def test_core_answers_h1107_with_each_persons_figure_and_categories() -> None:
    lines = S.lines(2026)
    assert lines is not None
    store = CoreStore.seed(1, 1, rng_seed=1)
    store.self_paid[2026] = sample_people(2026, lines, extra=3)
    client = CoreClient("http://core", timeout=2,
                        transport=httpx.ASGITransport(app=core_app(store=store)))
    got = await client.yearly_self_paid(2026, "202611")
    assert got == store.self_paid[2026]
    assert await client.yearly_self_paid(2025, "202512") == []


def test_h1107_records_round_trip_and_bad_ones_name_their_field() -> None:
    p = SelfPaid(id_number=ID, name="王小明", rural=True, insurance="none",
                 self_paid=Decimal("1.5"), categories=("former_registered",))
    assert self_paid_from_output([self_paid_to_wire(p)]) == [p]
    bad = self_paid_to_wire(p) | {"urbrur_type": "9"}
    with pytest.raises(ValidationFailed, match=r"records\[1\]"):
        self_paid_from_output([self_paid_to_wire(p), bad])
    with pytest.raises(ValidationFailed, match=r"psn_types|categories"):
        self_paid_from_output([self_paid_to_wire(p) | {"psn_types": ["alien"]}])
