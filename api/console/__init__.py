"""The web console (``/console``): dead letters, jobs, live state, transactions and
worklists for operations, caseworkers and admins, signed in with the admin API's role
tokens.

Server-rendered (Jinja2) pages with the console's own CSS and a small script for job
progress and select-all (``static/``): nothing is loaded from elsewhere, so it works on
an offline intranet. The session is a signed cookie (``session``); every form carries a
CSRF token; every action and every refusal is audited (``web.guard``). Personal data is
masked as in the JSON API. ``api.app.build_app`` includes ``router``.
"""

from fastapi import APIRouter

from api.console import dead_letters, pages

__all__ = ["router"]

router = APIRouter(tags=["console"])
router.include_router(pages.router)
router.include_router(dead_letters.router)
