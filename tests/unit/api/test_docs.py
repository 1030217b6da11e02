"""``/docs`` works offline: every script, style and icon it names is served by the hub."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from api.docs import install_docs


async def test_docs_name_only_local_assets_and_each_is_served() -> None:
    app = FastAPI(title="t", docs_url=None, redoc_url=None)
    install_docs(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://hub") as http:
        page = await http.get("/docs")
        assert page.status_code == 200
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
        urls += re.findall(r"""url: ?['"]([^'"]+)['"]""", page.text)
        assert urls and not [u for u in urls if re.match(r"(https?:)?//", u)]
        for url in (u for u in urls if u.startswith("/docs/static/")):
            r = await http.get(url)
            assert r.status_code == 200 and len(r.content) > 100, url
        assert "/openapi.json" in page.text
        assert (await http.get("/redoc")).status_code == 404
