"""The cluster tests start three RabbitMQ nodes (scripts/rabbit_cluster.sh): slow, so
they run only when selected (``make test-cluster``: ``-m cluster``), never in ``make test``."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cluster: needs the 3-node RabbitMQ cluster of scripts/rabbit_cluster.sh; "
        "runs only when selected with -m cluster (make test-cluster)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "cluster" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="cluster test: run with `make test-cluster` (-m cluster)")
    for item in items:
        if item.get_closest_marker("cluster"):
            item.add_marker(skip)
