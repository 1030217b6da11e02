"""The 参保凭证 PDF: drawn with the built-in CID font, one page per 30 periods, the same
inputs giving the same bytes."""

from __future__ import annotations

import random
import re
from datetime import date

from contracts.ids import make_id_number
from contracts.transfer import InsurancePeriod, TransferApplication
from jobs.transfer_certificate import FONT, render_certificate


def _app(periods: int) -> TransferApplication:
    rows = tuple(InsurancePeriod(begin_month=f"{1990 + i}01", end_month=f"{1990 + i}12")
                 for i in range(periods))
    return TransferApplication(
        application_no="CK20261120A1", name="孙立新",
        id_number=make_id_number(random.Random(8), born=date(1970, 5, 5)),
        source_division="320102", target_division="542521", apply_date=date(2026, 11, 20),
        periods=rows)


def test_the_certificate_is_a_pdf_with_the_cid_font() -> None:
    pdf = render_certificate(_app(2), issued=date(2026, 11, 21))
    assert pdf.startswith(b"%PDF") and pdf.rstrip().endswith(b"%%EOF")
    assert FONT.encode() in pdf and b"FontFile" not in pdf  # referenced, not embedded
    assert pdf == render_certificate(_app(2), issued=date(2026, 11, 21))
    assert pdf != render_certificate(_app(2), issued=date(2026, 11, 22))


def test_many_periods_take_more_pages() -> None:
    def pages(n: int) -> list[bytes]:
        return re.findall(rb"/Count (\d+)", render_certificate(_app(n),
                                                               issued=date(2026, 11, 21)))

    assert (pages(30), pages(31)) == ([b"1"], [b"2"])
