"""Request bodies at the doors: read with a bound, parse JSON with a depth bound.

``read_body`` refuses before reading when ``Content-Length`` says too much (413), and
otherwise reads the stream with a running total, so a chunked or lying body is cut off
at ``limit`` bytes: memory stays bounded either way. ``parse_json`` refuses a body
nested deeper than ``MAX_JSON_DEPTH`` (422, field ``body``) before ``json`` could
recurse into it (a RecursionError would otherwise be a 500), and text that is not a
JSON object (400). Refusals are ``BodyRefused``; each door answers it in its own format.
Reasons never quote the body: what a caller sent (ID numbers) is not echoed.
"""

from __future__ import annotations

import json
import operator
import re
from itertools import accumulate, count
from typing import Any, Final

from fastapi import Request

__all__ = ["MAX_JSON_DEPTH", "BodyRefused", "json_too_deep", "parse_json", "read_body"]

MAX_JSON_DEPTH: Final = 32
"""The deepest nesting of arrays and objects any JSON door takes (the real ones need 5)."""

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# '[' and '{' become 1, ']' and '}' 0; every other byte is deleted before counting.
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\x00\x00")
_OTHERS = bytes(b for b in range(256) if b not in b"[{]}")


class BodyRefused(Exception):
    """The body cannot be taken: ``status`` (400, 413, 422), a stable ``code``, the
    ``field`` at fault and the ``reason``."""

    def __init__(self, status: int, code: str, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.status = status
        self.code = code
        self.field = field
        self.reason = reason


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes; ``BodyRefused`` 413 past it (checked on
    ``Content-Length`` before reading, then on every chunk), 400 for a bad Content-Length."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise BodyRefused(400, "BAD_REQUEST", "Content-Length", "must be a number")
        if int(declared) > limit:
            raise BodyRefused(413, "TOO_LARGE", "body",
                              f"{int(declared)} bytes is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyRefused(413, "TOO_LARGE", "body", f"over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text ``body`` nests arrays/objects deeper than ``limit``.

    Strings are blanked first (brackets in them do not count), then the running depth
    after the i-th bracket, ``2 * opened - i``, is computed by C iterators
    (``bytes.translate``, ``accumulate``, ``map``): linear, no recursion. For text
    that is not JSON the answer is a guess; parsing refuses such text anyway.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    steps = _STRING.sub(b'""', body).translate(_STEPS, _OTHERS)
    opened = map((2).__mul__, accumulate(steps))
    return max(map(operator.sub, opened, count(1)), default=0) > limit


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def parse_json(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    """A JSON object from ``body``: ``BodyRefused`` 422 when nested deeper than
    ``max_depth``, 400 when it is not UTF-8 JSON (NaN and Infinity included) or not
    an object."""
    if json_too_deep(body, max_depth):
        raise BodyRefused(422, "TOO_DEEP", "body",
                          f"nested deeper than {max_depth} arrays/objects")
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except RecursionError:  # json_too_deep guessed wrong on text that is not JSON
        raise BodyRefused(422, "TOO_DEEP", "body",
                          f"nested deeper than {max_depth} arrays/objects") from None
    except UnicodeDecodeError:
        raise BodyRefused(400, "BAD_JSON", "body", "not valid JSON: not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BodyRefused(400, "BAD_JSON", "body", f"not valid JSON: {exc.msg} at line "
                                                   f"{exc.lineno} column {exc.colno}") from None
    except ValueError as exc:
        raise BodyRefused(400, "BAD_JSON", "body", f"not valid JSON: {exc}"[:200]) from None
    if not isinstance(data, dict):
        raise BodyRefused(400, "BAD_JSON", "body", "must be a JSON object")
    return data
