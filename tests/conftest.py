"""Integration tests need RabbitMQ and Redis (``make test`` starts them).

Locally a missing server skips those tests; under CI (CI=true) it fails them,
so a green CI always means they ran (dramatiq's rule).
"""

from __future__ import annotations

import os
import socket

import pytest

pytest_plugins = ["tests.support.ops"]
"""Shared fixtures of the dead-letter tests: a migrated SQLite store and an admin app."""


def _up(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    needs = [i for i in items if i.get_closest_marker("integration")]
    if not needs or (_up(5672) and _up(6379)):
        return
    if os.environ.get("CI"):
        raise pytest.UsageError("CI: RabbitMQ/Redis are not running; run scripts/services.sh")
    skip = pytest.mark.skip(reason="RabbitMQ/Redis not running (make services)")
    for item in needs:
        item.add_marker(skip)
