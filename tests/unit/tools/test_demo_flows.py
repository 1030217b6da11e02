"""The flow lines ``make demo`` ends with (``tools.demo_flows``) and the effect windows they
are counted from (``EffectLog.since``, ``sync_effect_statuses``)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from simulators.core import sync_effect_statuses
from simulators.simkit import EffectLog
from tools.demo_flows import FLOW_NAMES, Flow, FlowBook, extra_effects, http_outcome, wait_for


def test_a_flow_of_outcomes_adds_up() -> None:
    f = Flow.of(["delivered", "delivered", "rejected", "dead"], duplicates=1)
    assert (f.sent, f.delivered, f.rejected, f.dead, f.duplicates) == (4, 2, 1, 1, 1)
    assert f.balanced


def test_what_no_partner_accounts_for_is_dead() -> None:
    f = Flow(sent=10, delivered=6, rejected=2, failed=1)
    assert f.dead == 2  # one failed, one unaccounted
    assert f.balanced
    assert f.line(2) == "F2 税务同步: sent=10 delivered=6 rejected=2 dead=2 duplicates=0"


def test_more_outcomes_than_sent_is_a_problem() -> None:
    book = FlowBook()
    book.add(3, Flow(sent=2, delivered=2, rejected=1))
    assert not book.flows[3].balanced
    assert book.problems() == ["F3: partners show 3 outcomes for 2 sent"]


def test_flows_add_up_part_by_part() -> None:
    book = FlowBook()
    book.add(2, Flow(sent=200, delivered=176, rejected=22, failed=2))
    book.add(2, Flow(sent=37, delivered=34, rejected=3))
    assert book.flows[2] == Flow(sent=237, delivered=210, rejected=25, failed=2)
    assert book.problems() == []
    with pytest.raises(ValueError, match="F16"):
        book.add(16, Flow())


def test_duplicates_are_a_problem() -> None:
    book = FlowBook()
    book.add(1, Flow.of(["delivered"], duplicates=1))
    assert book.problems() == ["F1: 1 duplicate side effects at the partner"]


def test_lines_name_every_flow_and_the_missing_ones() -> None:
    book = FlowBook()
    book.add(4, Flow.of(["delivered", "rejected", "dead"]))
    lines = book.lines()
    assert len(lines) == 15 == len(FLOW_NAMES)
    assert lines[3] == "F4 查询: sent=3 delivered=1 rejected=1 dead=1 duplicates=0"
    assert lines[0] == "F1 渠道申请: not built"
    assert lines[14] == "F15 大病保险: not built"
    assert all(line.startswith(f"F{n} ") for n, line in enumerate(lines, 1))


@pytest.mark.parametrize(("code", "outcome"), [(200, "delivered"), (202, "delivered"),
                                               (404, "rejected"), (422, "rejected"),
                                               (500, "dead"), (503, "dead"), (None, "dead")])
def test_http_outcome(code: int | None, outcome: str) -> None:
    assert http_outcome(code) == outcome


def test_extra_effects_counts_effects_beyond_the_first() -> None:
    assert extra_effects({"a": 1, "b": 3, "c": 2}) == 3
    assert extra_effects({}) == 0


def test_an_effect_window_counts_only_what_came_after_the_snapshot() -> None:
    log = EffectLog()
    log.record("EmployeeEnroll:U1:A")
    log.record("UnitUpdate:U1")
    before = log.snapshot()
    log.record("EmployeeEnroll:U1:A")  # a resend: one new effect, not a duplicate
    log.record("EmployeeEnroll:U1:B")
    log.record("EmployeeEnroll:U1:B")  # a duplicate
    log.record("H9201:U1:A:synced")
    assert before == Counter({"EmployeeEnroll:U1:A": 1, "UnitUpdate:U1": 1})
    assert log.since(before, "EmployeeEnroll:") == Counter(
        {"EmployeeEnroll:U1:A": 1, "EmployeeEnroll:U1:B": 2})
    assert log.since(before, ("UnitUpdate:", "H9201:")) == Counter({"H9201:U1:A:synced": 1})
    summary = log.summary_since(before)
    assert summary == {"effects": 4, "distinct": 3, "duplicates": {"EmployeeEnroll:U1:B": 2},
                       "extra": 1}
    assert log.summary()["duplicates"] == {"EmployeeEnroll:U1:A": 2, "EmployeeEnroll:U1:B": 2}


def test_sync_statuses_are_read_from_core_effect_keys() -> None:
    effects = {"H9201:91320117HW1Y4LE9W7:320105199005178610:synced": 2,
               "H9201:91320117HW1Y4LE9W7:rejected": 1, "H9201:X:failed": 1,
               "H2501:app-1": 1, "H3101:rf-abc-000000": 1}
    assert sync_effect_statuses(effects) == Counter({"synced": 2, "rejected": 1, "failed": 1})


def test_wait_for() -> None:
    seen: list[int] = []

    def done() -> bool:
        seen.append(1)
        return len(seen) >= 3

    assert asyncio.run(wait_for(done, timeout=5, poll_s=0.001))
    assert not asyncio.run(wait_for(lambda: False, timeout=0.01, poll_s=0.001))
