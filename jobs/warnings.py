"""F8 高额费用预警: the two lists and who gets whom, as pure functions (seed 1537-1567).

    因病致贫 (poverty, 1562)  yearly 个人自付 > the previous year's 城镇 or 农村居民人均可支配
                             收入 (the person's own: ``SelfPaid.rural``)
                             -> 民政, 农业农村, 退役军人事务, 工会, each within its remit
    因病返贫 (relapse, 1567)  农村低收入人口, and former 建档立卡 people not in the
                             low-income population (insured or not), whose yearly 个人自付
                             > the year's 最低生活保障标准 -> 农业农村, 民政

Remit (1557: "推送给各类医疗救助对象的入口审定部门"), the hub's reading, documented in
``contracts/WARNINGS.md``:

    civil_affairs  everyone on either list (民政 decides 低保/特困/低保边缘/支出型救助)
    agriculture    因病返贫, and 因病致贫 people who are 农村居民
    veterans       因病致贫 people who are 优抚对象/退役军人 (category ``veteran``)
    union          因病致贫 people insured as employees (职工医保) or 困难职工

"Exceeds" and "passes" are strict: a figure equal to the line is not a warning.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from contracts.warnings import LOW_INCOME, ExpenseWarning, SelfPaid, Thresholds

__all__ = ["compute", "is_poverty", "is_relapse", "kinds_of", "relapse_population", "remit"]


def is_poverty(p: SelfPaid, t: Thresholds) -> bool:
    """因病致贫: over the previous year's disposable income of the person's urban/rural."""
    return p.self_paid > t.income(p.rural)


def relapse_population(p: SelfPaid) -> bool:
    """农村低收入人口 (a 农村居民 in any low-income category: 农村低收入人口, 低保, 低保边缘,
    特困), or a former 建档立卡 person not in the low-income population."""
    cats = set(p.categories)
    if "rural_low_income" in cats or (p.rural and cats & LOW_INCOME):
        return True
    return "former_registered" in cats and not cats & LOW_INCOME


def is_relapse(p: SelfPaid, t: Thresholds) -> bool:
    """因病返贫: in the relapse population and over the 最低生活保障标准."""
    return relapse_population(p) and p.self_paid > t.dibao(p.rural)


def kinds_of(p: SelfPaid, t: Thresholds) -> tuple[str, ...]:
    return tuple(k for k, hit in (("poverty", is_poverty(p, t)),
                                  ("relapse", is_relapse(p, t))) if hit)


def remit(department: str, p: SelfPaid, kinds: Iterable[str]) -> tuple[str, ...]:
    """The kinds of warning about ``p`` that ``department`` receives (empty: none)."""
    ks = set(kinds)
    cats = set(p.categories)
    out: list[str] = []
    if "poverty" in ks and (
            department == "civil_affairs"
            or (department == "agriculture" and p.rural)
            or (department == "veterans" and "veteran" in cats)
            or (department == "union" and (p.insurance == "employee"
                                           or "union_hardship" in cats))):
        out.append("poverty")
    if "relapse" in ks and department in ("civil_affairs", "agriculture"):
        out.append("relapse")
    return tuple(out)


def _line(p: SelfPaid, t: Thresholds, kinds: tuple[str, ...]) -> Decimal:
    lines = [t.income(p.rural) if k == "poverty" else t.dibao(p.rural) for k in kinds]
    return min(lines)


def compute(month: str, people: Iterable[SelfPaid], t: Thresholds,
            departments: Iterable[str]) -> list[ExpenseWarning]:
    """Every warning of ``month``: one per department and person in its remit, ordered by
    department then ID number. A person core reports twice counts once (the higher figure)."""
    best: dict[str, SelfPaid] = {}
    for p in people:
        if p.id_number not in best or p.self_paid > best[p.id_number].self_paid:
            best[p.id_number] = p
    depts = tuple(departments)
    out: list[ExpenseWarning] = []
    for p in sorted(best.values(), key=lambda x: x.id_number):
        kinds = kinds_of(p, t)
        if not kinds:
            continue
        for d in depts:
            mine = remit(d, p, kinds)
            if mine:
                out.append(ExpenseWarning(department=d, month=month, person=p,
                                          kinds=mine, line=_line(p, t, mine)))
    out.sort(key=lambda w: (w.department, w.person.id_number))
    return out
