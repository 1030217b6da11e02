"""``/docs``: Swagger UI served from the hub itself, for an offline intranet.

FastAPI's own ``/docs`` and ``/redoc`` load their scripts and styles from a CDN, so on
a network without the internet they are blank pages. The hub turns those off and serves
Swagger UI's files from the ``swagger-ui-bundle`` package (the maintained wheel of the
``swagger-ui-dist`` release), under ``/docs/static``; ``/openapi.json`` stays as it is.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

__all__ = ["STATIC", "install_docs"]

STATIC = "/docs/static"


def install_docs(app: FastAPI) -> None:
    """``/docs`` with local assets; call on an app built with ``docs_url=None``."""
    app.mount(STATIC, StaticFiles(directory=swagger_ui_path), name="docs-static")

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} - API",
            swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC}/favicon-32x32.png")

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
