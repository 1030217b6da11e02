"""The 参保凭证 of an offline transfer (未联网地区, seed 2571, 2676, 2761) as a PDF.

The text is ``contracts.transfer.certificate_lines``; this module only draws it, with
reportlab's built-in CID font ``STSong-Light`` (Adobe's Chinese font resource, shipped
by every PDF reader), so no font file is read or embedded: the PDF is small and the
renderer needs nothing but the library. A4, one page per 30 periods.
"""

from __future__ import annotations

import io
from datetime import date
from typing import Final

from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from contracts.transfer import TransferApplication, certificate_lines

__all__ = ["FONT", "TITLE", "render_certificate"]

FONT: Final = "STSong-Light"
TITLE: Final = "基本医疗保险参保凭证"
_ROWS_PER_PAGE: Final = 30
_registered: list[bool] = []


def _font() -> str:
    if not _registered:
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
        _registered.append(True)
    return FONT


def render_certificate(app: TransferApplication, *, issued: date,
                       issuer: str = "南京市医疗保障局") -> bytes:
    """The PDF bytes of ``app``'s 参保凭证, dated ``issued`` (the same inputs give the
    same text; reportlab stamps its own creation time into the metadata)."""
    font = _font()
    facts, rows = certificate_lines(app, issued=issued, issuer=issuer)
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4, invariant=True)
    pdf.setTitle(f"{TITLE} {app.application_no}")
    pdf.setAuthor(issuer)
    width, height = A4
    pages = [rows[i:i + _ROWS_PER_PAGE] for i in range(0, len(rows), _ROWS_PER_PAGE)] or [[]]
    for n, page in enumerate(pages, start=1):
        y = height - 72
        pdf.setFont(font, 18)
        pdf.drawCentredString(width / 2, y, TITLE)
        y -= 36
        pdf.setFont(font, 11)
        if n == 1:
            for label, value in facts:
                pdf.drawString(72, y, f"{label}：{value}")
                y -= 20
            y -= 10
        pdf.drawString(72, y, "参保缴费期间")
        y -= 18
        for col, x in (("起止年月", 72), ("险种", 200), ("月数", 340), ("参保单位", 390)):
            pdf.drawString(x, y, col)
        y -= 16
        for period, insutype, months, unit in page:
            pdf.drawString(72, y, period)
            pdf.drawString(200, y, insutype)
            pdf.drawString(340, y, months)
            pdf.drawString(390, y, unit[:16])
            y -= 16
        if not page:
            pdf.drawString(72, y, "(无)")
        pdf.drawString(72, 60, f"第 {n} 页 / 共 {len(pages)} 页    {issuer}")
        pdf.showPage()
    pdf.save()
    return buf.getvalue()
