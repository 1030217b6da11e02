"""The storage integration tests' PostgreSQL database: a fresh one per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.postgres import fresh_database


@pytest.fixture
async def pg_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A new database named after the test module (``test_warnings_pg`` -> ``warnings_…``)."""
    module = request.module.__name__.rsplit(".", 1)[-1]
    async with fresh_database(module.removeprefix("test_").removesuffix("_pg")[:16]) as url:
        yield url
