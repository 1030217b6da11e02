"""The demo's people (tools.demo_fidelity): every draw a new person, none on a simulator's
failure switch, even when a birth date, sex and area has almost no numbers left."""

from __future__ import annotations

from datetime import date

from tools import demo_fidelity


def test_every_draw_is_a_new_person_off_the_switches() -> None:
    born = date(1971, 7, 7)  # day 7: the non-unique switch "7777" is reachable
    drawn = [demo_fidelity._person(born, male=True) for _ in range(490)]
    assert len(set(drawn)) == len(drawn)
    assert not [p for p in drawn if p[-5:-1] in demo_fidelity._SWITCHES]
    assert "7777" in demo_fidelity._SWITCHES and "4444" in demo_fidelity._SWITCHES
