"""The composition root: the one place that builds every client, store, lane and door.

``main.py`` (the CLI) calls ``build_hub``; nothing else constructs adapters or
stores for the running hub. ``bootstrap.hub`` owns the process's lifecycle
(start, stop, broker watchdog, health).
"""

from bootstrap.hub import Hub
from bootstrap.wiring import ROUTES, build_hub, build_returnfiles

__all__ = ["ROUTES", "Hub", "build_hub", "build_returnfiles"]
