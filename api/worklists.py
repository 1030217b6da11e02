"""Caseworker worklists (``services.worklists``) as JSON.

    GET /worklists          every list this hub has, with its count and path
    GET /worklists/{name}   one page of a list, oldest first: each item's kind, masked
                            subject, since when it waits, and the paths to look and act

Readable by every role (subjects are masked); acting happens at each item's
``action`` path, which checks its own role.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query

from api.deps import HubDeps, Reader
from services import worklists
from services.worklists import UnknownWorklist

__all__ = ["router"]

router = APIRouter(tags=["caseworker worklists"])

Name = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[a-z_]+$")]


@router.get("/worklists", summary="The caseworker worklists of this hub, with counts")
async def all_lists(_who: Reader, deps: HubDeps) -> dict[str, Any]:
    counts = await worklists.counts(deps)
    return {"lists": [{"name": n, "title": worklists.TITLES[n], "count": c,
                       "path": f"/worklists/{n}"} for n, c in counts.items()],
            "total": sum(counts.values())}


@router.get("/worklists/{name}", summary="One worklist, oldest first (masked)",
            responses={404: {"description": "no such worklist in this hub"}})
async def one_list(name: Name, _who: Reader, deps: HubDeps,
                   limit: Annotated[int, Query(ge=1, le=worklists.MAX_LIMIT)] = 50,
                   offset: Annotated[int, Query(ge=0, le=2**31)] = 0) -> dict[str, Any]:
    try:
        page = await worklists.worklist(deps, name, limit=limit, offset=offset)
    except UnknownWorklist:
        raise HTTPException(404, f"no worklist {name}; see /worklists") from None
    return page.as_dict()
