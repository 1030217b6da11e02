"""F8 list rules (``jobs.warnings``): each line on both sides, urban vs rural, and who
receives whom (seed 1557, 1562, 1567)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from contracts.warnings import DEPARTMENTS, SelfPaid, Thresholds
from jobs.warnings import compute, is_poverty, is_relapse, kinds_of, relapse_population, remit

T = Thresholds(urban_income=Decimal(80000), rural_income=Decimal(38000),
               urban_dibao=Decimal(15000), rural_dibao=Decimal(14000))
CENT = Decimal("0.01")


def person(paid: Decimal | int, *, rural: bool = False, insurance: str = "resident",
           cats: tuple[str, ...] = (), n: int = 1) -> SelfPaid:
    return SelfPaid(id_number=f"32010219800101{n:03d}X"[:18], name=f"人{n}", rural=rural,
                    insurance=insurance, self_paid=Decimal(paid), categories=cats)  # type: ignore[arg-type]


@pytest.mark.parametrize(("rural", "line"), [(False, T.urban_income), (True, T.rural_income)])
def test_poverty_line_is_strict_and_the_persons_own_urban_or_rural(rural: bool,
                                                                    line: Decimal) -> None:
    assert not is_poverty(person(line, rural=rural), T)
    assert is_poverty(person(line + CENT, rural=rural), T)


def test_a_rural_figure_over_the_rural_line_but_under_the_urban_one() -> None:
    paid = T.rural_income + 1000  # 39000: over 农村, under 城镇
    assert is_poverty(person(paid, rural=True), T)
    assert not is_poverty(person(paid, rural=False), T)


@pytest.mark.parametrize(("rural", "line"), [(False, T.urban_dibao), (True, T.rural_dibao)])
def test_relapse_line_is_strict_and_uses_the_persons_dibao(rural: bool, line: Decimal) -> None:
    cats = ("former_registered",)
    assert not is_relapse(person(line, rural=rural, cats=cats), T)
    assert is_relapse(person(line + CENT, rural=rural, cats=cats), T)


def test_the_relapse_population() -> None:
    assert relapse_population(person(0, rural=True, cats=("rural_low_income",)))
    assert relapse_population(person(0, rural=True, cats=("dibao",)))  # 农村低保: low income
    assert relapse_population(person(0, insurance="none", cats=("former_registered",)))
    # a former 建档立卡 person inside the low-income population counts only as rural low income
    assert not relapse_population(person(0, rural=False,
                                         cats=("former_registered", "dibao")))
    assert not relapse_population(person(0, rural=False, cats=("dibao",)))  # urban 低保
    assert not relapse_population(person(0, rural=True))
    assert not is_relapse(person(T.rural_dibao + 1, rural=True), T)


def test_both_kinds_at_once() -> None:
    p = person(T.rural_income + 1, rural=True, cats=("rural_low_income",))
    assert kinds_of(p, T) == ("poverty", "relapse")
    assert kinds_of(person(1, rural=True, cats=("rural_low_income",)), T) == ()


def test_remit_of_each_department() -> None:
    urban_worker = person(1, insurance="employee")
    rural = person(1, rural=True)
    veteran = person(1, cats=("veteran",))
    hardship = person(1, cats=("union_hardship",))
    assert remit("civil_affairs", urban_worker, ["poverty"]) == ("poverty",)
    assert remit("agriculture", urban_worker, ["poverty"]) == ()
    assert remit("agriculture", rural, ["poverty"]) == ("poverty",)
    assert remit("veterans", urban_worker, ["poverty"]) == ()
    assert remit("veterans", veteran, ["poverty"]) == ("poverty",)
    assert remit("union", rural, ["poverty"]) == ()
    assert remit("union", urban_worker, ["poverty"]) == ("poverty",)
    assert remit("union", hardship, ["poverty"]) == ("poverty",)
    # 因病返贫 goes to 农业农村 and 民政 only (1567)
    for dept, want in (("civil_affairs", ("relapse",)), ("agriculture", ("relapse",)),
                       ("veterans", ()), ("union", ())):
        assert remit(dept, person(1, insurance="employee", cats=("veteran",)),
                     ["relapse"]) == want, dept


def test_compute_lists_each_department_its_people_once() -> None:
    people = [
        person(T.urban_income + 1, insurance="employee", n=1),          # 民政, 工会
        person(T.rural_income + 1, rural=True, n=2,
               cats=("rural_low_income",)),                            # 民政, 农业农村 (both)
        person(T.urban_income + 1, cats=("veteran",), n=3),             # 民政, 退役军人
        person(T.urban_income, n=4),                                    # nobody: on the line
        person(10, rural=True, n=5, cats=("former_registered",)),       # nobody: under
    ]
    people.append(person(5, insurance="employee", n=1))  # core repeats n=1 lower: kept higher
    got = compute("202611", people, T, DEPARTMENTS)
    by = {(w.department, w.person.name): w for w in got}
    assert set(by) == {("civil_affairs", "人1"), ("union", "人1"), ("civil_affairs", "人2"),
                       ("agriculture", "人2"), ("civil_affairs", "人3"), ("veterans", "人3")}
    assert by[("agriculture", "人2")].kinds == ("poverty", "relapse")
    assert by[("agriculture", "人2")].line == T.rural_dibao  # the lowest line passed
    assert by[("union", "人1")].person.self_paid == T.urban_income + 1
    assert len({w.id for w in got}) == len(got)
    # a department not configured gets nothing
    assert {w.department for w in compute("202611", people, T, ["veterans"])} == {"veterans"}
