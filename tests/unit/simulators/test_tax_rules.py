"""The simulated bureau's rules, on their own (no SOAP, no sockets)."""

from __future__ import annotations

from datetime import date

from simulators.tax_rules import KNOWN_COMMUNITIES, NON_UNIQUE_SUFFIX, TaxBook, community_for

ID = "320102199001011237"
NON_UNIQUE = "32010219900101" + NON_UNIQUE_SUFFIX[:3] + "0"


def flex(id_number: str = ID, **over: str) -> dict[str, str]:
    return {"zjhm": id_number, "xm": "王芳", "jcybqh": community_for("320102"),
            "tbrq": "2026-12-31", "tbyy": "02"} | over


def test_community_unknown_to_tax_is_refused() -> None:
    assert community_for("320115", 7) in KNOWN_COMMUNITIES
    d = TaxBook().decide("FlexibleEnroll", flex(jcybqh="320102999999"))
    assert d.code == "TX301"


def test_flexible_termination_needs_identity_confirmation_when_not_unique() -> None:
    book = TaxBook()
    zjhm = ID[:-5] + NON_UNIQUE_SUFFIX + ID[-1]
    assert book.decide("FlexibleEnroll", flex(zjhm)).ok
    assert book.decide("FlexibleTerminate", flex(zjhm)).code == "TX402"
    assert book.decide("FlexibleIdentityConfirm", {"zjhm": zjhm, "sfqrh": "QR1"}).ok
    assert book.decide("FlexibleTerminate", flex(zjhm, sfqrh="QR1")).ok
    assert book.decide("FlexibleTerminate", flex(zjhm, sfqrh="QR1")).code == "TX303"


def test_retirement_is_refused_with_arrears() -> None:
    book = TaxBook(arrears={ID: 120_000})
    d = book.decide("EmployeeRetire", {"zjhm": ID, "shxydm": "X", "txrq": "2026-12-01"})
    assert d.code == "TX203" and "120000" in d.text
    assert TaxBook(arrears={ID: 0}).decide("EmployeeRetire", {"zjhm": ID, "shxydm": "X"}).ok


def test_newborn_older_than_two_years_is_refused() -> None:
    d = TaxBook().decide("NewbornEnroll", flex(csrq="2023-01-01", cbnd="2026"),
                         today=date(2026, 11, 24))
    assert d.code == "TX503"


def test_unit_lifecycle() -> None:
    book = TaxBook(arrears={"U1": 0})
    unit = {"shxydm": "U1", "dwmc": "南京甲公司", "sbjbjgdm": "320102", "ksjfny": "202601"}
    assert book.decide("UnitUpdate", unit).code == "TX102"
    assert book.decide("UnitEnroll", unit).ok
    assert book.decide("UnitEnroll", unit).code == "TX103"
    assert book.decide("UnitPayStatusChange", unit | {"jfztbg": "1"}).ok
    assert book.decide("UnitPayStatusChange", unit | {"jfztbg": "1"}).code == "TX104"
    assert book.decide("UnitCancel", unit).ok


def test_queries_answer_from_the_book() -> None:
    book = TaxBook(arrears={ID: 50_000})
    [row] = book.answer("QueryPersonArrears", {"id_number": ID})
    assert row["arrears"] == 50_000
    assert book.arrears_of("X") == 0  # derived from the key: "X" owes nothing
    assert book.answer("QueryPersonArrears", {"id_number": "X"}) == []
    assert TaxBook(arrears={"C": 0}).answer("QueryPersonArrears", {"id_number": "C"}) == []
    owed = book.arrears_of("C")  # derived from the key: "C" owes
    assert owed > 0
    [debt] = book.answer("QueryPersonArrears", {"id_number": "C"})
    assert debt["arrears"] == owed
    assert book.answer("QueryCommunity", {"community": "320102999999"})[0]["valid"] == "0"


MOTHER = "320106199401120521"


def _newborn(born: str = "2026-10-01", **over: str) -> dict[str, str]:
    return {"zjhm": "320106202610012205", "xm": "王小雨", "csrq": born, "cbrq": born,
            "mqzjhm": MOTHER, "jcybqh": community_for("320106"), "cbnd": "2026"} | over


def test_a_newborn_is_refused_while_its_prenewborn_is_enrolled_and_taken_after_the_stop() -> None:
    book, today = TaxBook(), date(2026, 11, 24)
    pre = {"mqzjhm": MOTHER, "tc": "1", "jcybqh": community_for("320106"), "cbnd": "2026",
           "cbrq": "2026-06-01"}
    assert book.decide("PreNewbornEnroll", pre, today).ok
    assert book.decide("NewbornEnroll", _newborn(), today).code == "TX507"
    stop = {"mqzjhm": MOTHER, "tc": "1", "tbrq": "2026-11-24"}
    assert book.decide("PreNewbornStop", stop, today).ok
    assert book.decide("PreNewbornStop", stop, today).code == "TX506"  # nothing left to stop
    assert book.answer("QueryPreNewborn", {"mother_id_number": MOTHER}, today)[0][
        "prenewborn_status"] == "2"
    assert book.decide("NewbornEnroll", _newborn(), today).ok


def test_a_newborns_insure_date_must_be_its_birth_date() -> None:
    d = TaxBook().decide("NewbornEnroll", _newborn(cbrq="2026-11-24"), date(2026, 11, 24))
    assert d.code == "TX505"
