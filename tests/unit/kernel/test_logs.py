"""JSON log lines (kernel.logs): shape, masking of msg and extras, context, trace ids."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from kernel.logs import ACCESS_LOGGER, bind, configure_logging, current_context, log_context
from kernel.tracing import tracer

ID = "320102199005170017"
PHONE = "13912345678"


@pytest.fixture
def out() -> Iterator[io.StringIO]:
    """The process's logging set up by ``configure_logging`` into a buffer, then restored."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger(ACCESS_LOGGER).level)
    buf = io.StringIO()
    configure_logging("INFO", "json", stream=buf)
    try:
        yield buf
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logging.getLogger(ACCESS_LOGGER).setLevel(saved[2])


def lines(buf: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_a_line_is_one_json_object_with_ts_level_logger_msg(out: io.StringIO) -> None:
    logging.getLogger("hub.test").warning("queue %s is %d deep", "hub.q.tax.unit", 7)
    [line] = lines(out)
    assert line["level"] == "WARNING" and line["logger"] == "hub.test"
    assert line["msg"] == "queue hub.q.tax.unit is 7 deep"
    assert str(line["ts"]).endswith("+00:00") and "T" in str(line["ts"])
    assert "trace_id" not in line and "correlation_id" not in line  # nothing known, nothing said
    assert out.getvalue().count("\n") == 1


def test_an_id_number_is_masked_in_the_message_the_extras_and_the_traceback(
        out: io.StringIO) -> None:
    log = logging.getLogger("hub.test")
    log.warning("tax refused %s", ID, extra={"id_number": ID, "note": f"call {PHONE}",
                                             "nested": {"zjhm": ID, "n": 2}})
    try:
        raise KeyError(ID)
    except KeyError:
        log.exception("lookup of %s failed", ID)
    text = out.getvalue()
    assert ID not in text and PHONE not in text
    first, second = lines(out)
    assert first["msg"] == "tax refused 320102********0017"
    assert first["id_number"] == "320102********0017"
    assert first["note"] == "call 139****5678"
    assert first["nested"] == {"zjhm": "320102********0017", "n": 2}
    assert "KeyError" in str(second["exc"]) and "320102********0017" in str(second["exc"])


def test_context_fields_ride_on_every_line_inside_the_block_only(out: io.StringIO) -> None:
    log = logging.getLogger("hub.runtime")
    with log_context(route="tax.employee", partner="tax", message_id="m1"):
        bind(correlation_id="c1")
        log.warning("inside")
        assert current_context() == {"route": "tax.employee", "partner": "tax",
                                     "message_id": "m1", "correlation_id": "c1"}
        with log_context(attempt=2, partner=None):
            log.warning("nested")
    log.warning("outside")
    inside, nested, outside = lines(out)
    assert [k for k in inside if k in ("message_id", "correlation_id", "route", "partner")] \
        == ["message_id", "correlation_id", "route", "partner"]
    assert (inside["route"], inside["partner"], inside["correlation_id"]) == (
        "tax.employee", "tax", "c1")
    assert nested["attempt"] == 2 and nested["partner"] == "tax"  # None leaves it as it was
    assert "route" not in outside and "correlation_id" not in outside
    assert current_context() == {}


async def test_context_does_not_leak_between_concurrent_tasks(out: io.StringIO) -> None:
    log = logging.getLogger("hub.runtime")

    async def one(mid: str) -> None:
        with log_context(message_id=mid):
            await asyncio.sleep(0.01)
            bind(correlation_id=f"c-{mid}")
            await asyncio.sleep(0.01)
            log.warning("done")

    await asyncio.gather(one("a"), one("b"))
    got = {(line["message_id"], line["correlation_id"]) for line in lines(out)}
    assert got == {("a", "c-a"), ("b", "c-b")}


def test_trace_and_span_ids_of_the_current_span_are_on_the_line(out: io.StringIO) -> None:
    with tracer().start_as_current_span("t") as span:
        logging.getLogger("hub.test").warning("traced")
        ctx = span.get_span_context()
    [line] = lines(out)
    assert line["trace_id"] == f"{ctx.trace_id:032x}"
    assert line["span_id"] == f"{ctx.span_id:016x}"


def test_text_format_for_humans_is_masked_and_names_the_context() -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    buf = io.StringIO()
    configure_logging("INFO", "text", stream=buf)
    try:
        with log_context(correlation_id="c9"):
            logging.getLogger("hub.test").warning("person %s", ID)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    text = buf.getvalue()
    assert ID not in text and "320102********0017" in text
    assert "WARNING hub.test: person" in text and "[correlation_id=c9]" in text
    with pytest.raises(ValueError, match="log format 'xml'"):
        configure_logging("INFO", "xml")


def test_the_access_log_is_kept_at_info_whatever_the_level(out: io.StringIO) -> None:
    configure_logging("WARNING", "json", stream=out)
    logging.getLogger(ACCESS_LOGGER).info("GET /health 200")
    logging.getLogger("hub.test").info("not at warning")
    assert [line["msg"] for line in lines(out)] == ["GET /health 200"]
    configure_logging("WARNING", "json", stream=out, access=False)
    logging.getLogger(ACCESS_LOGGER).info("silenced")
    assert len(lines(out)) == 1
