"""Every lane the hub runs, in one tuple: ``main.build_hub`` consumes ``ROUTES``."""

from __future__ import annotations

from typing import Final

from routes.channels import CHANNEL_ROUTES
from routes.compare import COMPARE_ROUTE
from routes.employee import RESULT_ROUTES
from routes.runtime import Route
from routes.tax_catalogue import CATALOGUE_ROUTES

__all__ = ["ROUTES"]

ROUTES: Final[tuple[Route, ...]] = (*CATALOGUE_ROUTES, COMPARE_ROUTE, *RESULT_ROUTES,
                                    *CHANNEL_ROUTES)
