"""The simulated bureau's identity switch: any person can be made not unique
(``TaxBook.not_unique``), confirmed, then terminated once; a confirmation can be refused
(``confirm_refusals``, TX403)."""

from __future__ import annotations

from simulators.tax_rules import TaxBook, community_for

ID = "32010219880928997X"


def flex(**over: str) -> dict[str, str]:
    return {"zjhm": ID, "xm": "王芳", "jcybqh": community_for("320102"),
            "tbrq": "2026-12-31", "tbyy": "01"} | over


def test_the_switch_makes_a_person_not_unique_until_confirmed() -> None:
    book = TaxBook()
    assert book.decide("FlexibleEnroll", flex()).ok
    book.not_unique.add(ID)
    assert book.decide("FlexibleTerminate", flex()).code == "TX402"
    assert book.decide("FlexibleTerminate", flex(sfqrh="QR-OTHER")).code == "TX402"
    assert book.decide("FlexibleIdentityConfirm", {"zjhm": ID, "sfqrh": "QR1"}).ok
    assert book.decide("FlexibleTerminate", flex(sfqrh="QR1")).ok
    assert book.persons[("flexible", ID)]["status"] == "terminated"


def test_a_unique_person_terminates_without_confirmation() -> None:
    book = TaxBook()
    assert book.decide("FlexibleEnroll", flex()).ok
    assert book.decide("FlexibleTerminate", flex()).ok


def test_a_confirmation_can_be_refused() -> None:
    book = TaxBook(not_unique={ID}, confirm_refusals={ID: "身份确认未通过"})
    d = book.decide("FlexibleIdentityConfirm", {"zjhm": ID, "sfqrh": "QR1"})
    assert (d.code, d.text) == ("TX403", "身份确认未通过") and ID not in book.confirmed
    del book.confirm_refusals[ID]
    assert book.decide("FlexibleIdentityConfirm", {"zjhm": ID, "sfqrh": "QR1"}).ok
