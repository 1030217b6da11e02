"""Every XML reader of the hub refuses DTDs, entities and oversize input (issue 4, item 7)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from adapters.tax import soap
from adapters.tax import student_batch as batch
from contracts.errors import HubError, ValidationFailed

XXE = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
       b'<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/">'
       b"<soap-env:Body><x>&e;</x></soap-env:Body></soap-env:Envelope>")
LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
          b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
          b'<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/">'
          b"<soap-env:Body><x>&b;</x></soap-env:Body></soap-env:Envelope>")
UTF16_DOCTYPE = XXE.decode().replace('<?xml version="1.0"?>',
                                     '<?xml version="1.0" encoding="UTF-16"?>').encode("utf-16")

READERS: dict[str, Callable[[bytes], Any]] = {
    "parse_payload": soap.parse_payload,
    "parse_request(tax side)": soap.parse_request,
    "parse_request(hub callback)": lambda b: soap.parse_request(b, kinds=("push",
                                                                          "core_query")),
    "parse_ack": soap.parse_ack,
    "parse_reply": soap.parse_reply,
    "parse_query_reply": lambda b: soap.parse_query_reply("QueryCommunity", b),
    "parse_feedback_request": soap.parse_feedback_request,
    "parse_batch_request": batch.parse_batch_request,
    "parse_batch_response": lambda b: batch.parse_batch_response("enroll", b),
}


@pytest.mark.parametrize("body", [XXE, LAUGHS, UTF16_DOCTYPE], ids=["xxe", "laughs", "utf16"])
@pytest.mark.parametrize("reader", list(READERS), ids=list(READERS))
def test_document_type_declarations_are_refused(reader: str, body: bytes) -> None:
    with pytest.raises((ValidationFailed, HubError)) as e:
        READERS[reader](body)
    assert "passwd" not in str(e.value) and "aaaaaaaaaa" not in str(e.value)


def test_oversize_input_is_refused_before_parsing() -> None:
    big = b"<a>" + b"x" * (soap.MAX_BYTES + 1) + b"</a>"
    with pytest.raises(ValidationFailed) as e:
        soap.parse_payload(big)
    assert "limit" in e.value.reason
