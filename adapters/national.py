"""One reading of a national-envelope partner's HTTP answer, for every client that speaks it.

The transfer platform (F9), core's voucher services, the 省级凭证库 and 医税平台 (F13) and
the institutions' HIS and the core ledger (F14) all answer a POSTed ``NationalRequest``
with a ``NationalResponse``; what each HTTP outcome means for the runtime is the same for
all of them, so it is written once here:

- no answer in time: ``PartnerTimeout``; no connection: ``PartnerUnavailable`` (retried);
- 5xx, 408, 429: ``PartnerUnavailable`` (retried);
- another non-200: ``ClientError`` (the request is at fault: not retried);
- a body that is not a national envelope: ``PartnerUnavailable`` (a broken answer is the
  partner's trouble, worth another try);
- ``infcode`` not 0: ``BusinessRejected`` with the answer's ``err_code`` (or
  ``reject_code``) and ``err_msg``.

Core's own client (``adapters.core.client``) keeps its reading: it tells a 4xx from an
unexpected status.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import ValidationError

from contracts.errors import BusinessRejected, ClientError, PartnerTimeout, PartnerUnavailable
from contracts.national import NationalResponse

__all__ = ["national_answer", "post_national"]


def national_answer(r: httpx.Response, *, who: str, infno: str, partner: str,
                    reject_code: str) -> NationalResponse:
    """The partner's answer to ``infno`` as a successful ``NationalResponse``, or the
    hub error that says what went wrong (the module says which)."""
    if r.status_code >= 500 or r.status_code in (408, 429):
        raise PartnerUnavailable(f"{who} answered {infno} with HTTP {r.status_code}",
                                 partner=partner)
    if r.status_code != 200:
        raise ClientError(f"{who} refused {infno}: HTTP {r.status_code} {r.text[:200]}",
                          partner=partner)
    try:
        response = NationalResponse.model_validate_json(r.content)
    except ValidationError as exc:
        raise PartnerUnavailable(f"{who} sent a malformed {infno} answer: "
                                 f"{exc.errors(include_url=False)[0]['msg']}",
                                 partner=partner) from exc
    if not response.ok:
        code = (response.output or {}).get("err_code")
        raise BusinessRejected(str(code) if code else reject_code,
                               response.err_msg or f"{who} rejected {infno}", partner=partner)
    return response


async def post_national(http: httpx.AsyncClient, url: str, *, who: str, infno: str,
                        partner: str, reject_code: str, timeout_s: float, msgid: str = "",
                        **post: Any) -> NationalResponse:
    """POST a national request (``post``: httpx's ``json``/``content``, ``headers``,
    ``auth``...) and read the answer (``national_answer``)."""
    try:
        r = await http.post(url, **post)
    except httpx.TimeoutException as exc:
        raise PartnerTimeout(f"{who} did not answer {infno} within {timeout_s}s"
                             + (f" (msgid {msgid})" if msgid else ""), partner=partner) from exc
    except httpx.HTTPError as exc:
        raise PartnerUnavailable(f"{who} unreachable for {infno}: {type(exc).__name__}: {exc}",
                                 partner=partner) from exc
    return national_answer(r, who=who, infno=infno, partner=partner, reject_code=reject_code)
