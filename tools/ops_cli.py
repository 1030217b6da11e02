"""Operations command line for the hub's admin API (dead letters and the audit log).

    python -m tools.ops_cli dlq list [--partner P] [--type T] [--reason CODE] [--since 2h]
    python -m tools.ops_cli dlq groups
    python -m tools.ops_cli dlq show ID
    python -m tools.ops_cli dlq retry (--ids 1,2 | --group CODE | --all) [--rate N] --reason TEXT
    python -m tools.ops_cli dlq archive (--ids 1,2 | --group CODE) --reason TEXT
    python -m tools.ops_cli audit [--actor A] [--action dead_letter.retry] [--since 1d]

It talks HTTP to a running hub (``--url``, default ``$HUB_ADMIN_URL`` or
http://127.0.0.1:8000) with the token in ``--token`` or ``$HUB_ADMIN_TOKEN``,
so it works from any operator's machine and every action lands in the audit
log under the token's user. ``--json`` prints the API's answers as they are.
Exit status: 0 done, 1 refused or (partly) failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import httpx

__all__ = ["build_parser", "main", "run"]

DEFAULT_URL = "http://127.0.0.1:8000"
_REL = re.compile(r"^(\d+)\s*([smhd])$")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class CliError(Exception):
    """Reported as ``ops_cli: <message>`` with exit status 1."""


def when(value: str) -> str:
    """``30m``/``2h``/``7d`` ago, or an ISO time (UTC when no zone), as ISO 8601."""
    m = _REL.match(value.strip())
    if m:
        at = datetime.now(UTC) - timedelta(**{_UNIT[m.group(2)]: int(m.group(1))})
    else:
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a time: {value!r} (e.g. 2h, 1d, "
                                             "2026-11-26T08:00)") from None
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
    return at.isoformat()


def id_list(value: str) -> list[int]:
    try:
        ids = [int(p) for p in value.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of ids: {value!r} (e.g. 1,2,3)") from None
    if not ids:
        raise argparse.ArgumentTypeError("no ids given")
    return ids


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.ops_cli", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default=os.environ.get("HUB_ADMIN_URL", DEFAULT_URL),
                   help="hub base URL (default $HUB_ADMIN_URL or %(default)s)")
    p.add_argument("--token", default=None, help="admin token (default $HUB_ADMIN_TOKEN)")
    p.add_argument("--json", action="store_true", help="print the API's JSON answers")
    top = p.add_subparsers(dest="command", required=True)

    dlq = top.add_parser("dlq", help="dead letters").add_subparsers(dest="dlq", required=True)
    ls = dlq.add_parser("list", help="list dead letters, newest first")
    ls.add_argument("--partner")
    ls.add_argument("--type")
    ls.add_argument("--reason", dest="reason_code", help="reason code, e.g. UNAVAILABLE")
    ls.add_argument("--status", choices=("dead", "retried", "archived"))
    ls.add_argument("--route")
    ls.add_argument("--since", type=when, help="e.g. 2h, 1d or an ISO time")
    ls.add_argument("--until", type=when)
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--offset", type=int, default=0)

    gr = dlq.add_parser("groups", help="dead letters counted by reason, partner and type")
    gr.add_argument("--status", choices=("dead", "retried", "archived"), default="dead")
    gr.add_argument("--partner")
    gr.add_argument("--type")

    show = dlq.add_parser("show", help="one dead letter (masked)")
    show.add_argument("id", type=int)

    for name, helptext in (("retry", "send dead letters back to their work queue"),
                           ("archive", "archive dead letters (no retry intended)")):
        a = dlq.add_parser(name, help=helptext)
        sel = a.add_mutually_exclusive_group(required=True)
        sel.add_argument("--ids", type=id_list, help="e.g. 1,2,3")
        sel.add_argument("--group", metavar="CODE", help="every dead letter with this reason code")
        if name == "retry":
            sel.add_argument("--all", action="store_true", help="every dead letter (needs --yes)")
            a.add_argument("--rate", type=float, default=50.0, help="per second (default 50)")
            a.add_argument("--yes", action="store_true", help="confirm --all")
        a.add_argument("--partner", help="with --group: only this partner")
        a.add_argument("--type", help="with --group: only this message type")
        a.add_argument("--reason", required=True, help="why (kept in the audit log)")
        a.add_argument("--limit", type=int, default=1000, help="per call (default 1000)")

    au = top.add_parser("audit", help="the audit log, newest first")
    au.add_argument("--actor")
    au.add_argument("--action")
    au.add_argument("--outcome")
    au.add_argument("--since", type=when)
    au.add_argument("--until", type=when)
    au.add_argument("--limit", type=int, default=50)
    return p


def _params(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def _short(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n - 1] + "…"


class _Api:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._c = client

    async def call(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                   body: dict[str, Any] | None = None, timeout: float = 30.0) -> Any:
        try:
            r = await self._c.request(method, path, params=params, json=body, timeout=timeout)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach the hub: {type(exc).__name__}: {exc}") from None
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            if not isinstance(detail, str):
                detail = json.dumps(detail, ensure_ascii=False)
            raise CliError(f"HTTP {r.status_code}: {_short(detail, 500)}")
        return r.json()


async def _dlq(api: _Api, args: argparse.Namespace, out: TextIO) -> int:
    if args.dlq == "list":
        page = await api.call("GET", "/admin/dead-letters", params=_params(
            args, "partner", "type", "reason_code", "status", "route", "since", "until",
            "limit", "offset"))
        if args.json:
            print(json.dumps(page, ensure_ascii=False, indent=2), file=out)
            return 0
        print(f"{'id':>6}  {'dead at (UTC)':19}  {'status':8}  {'partner':8}  {'type':24}  "
              f"{'code':14}  {'att':>3}  reason", file=out)
        for d in page["items"]:
            print(f"{d['id']:>6}  {d['dead_at'][:19]:19}  {d['status']:8}  {d['partner']:8}  "
                  f"{_short(d['type'], 24):24}  {_short(d['reason_code'], 14):14}  "
                  f"{d['attempts']:>3}  {_short(d['reason'], 70)}", file=out)
        print(f"{len(page['items'])} of {page['total']} (offset {page['offset']})", file=out)
        return 0
    if args.dlq == "groups":
        groups = await api.call("GET", "/admin/dead-letters/groups",
                                params=_params(args, "status", "partner", "type"))
        if args.json:
            print(json.dumps(groups, ensure_ascii=False, indent=2), file=out)
            return 0
        print(f"{'count':>6}  {'code':14}  {'partner':8}  {'type':24}  last dead at  reason",
              file=out)
        for g in groups:
            print(f"{g['count']:>6}  {_short(g['reason_code'], 14):14}  {g['partner']:8}  "
                  f"{_short(g['type'], 24):24}  {g['last_dead_at'][:19]}  "
                  f"{_short(g['reason'], 70)}", file=out)
        return 0
    if args.dlq == "show":
        d = await api.call("GET", f"/admin/dead-letters/{args.id}")
        print(json.dumps(d, ensure_ascii=False, indent=2), file=out)
        return 0
    return await _act(api, args, out)


async def _act(api: _Api, args: argparse.Namespace, out: TextIO) -> int:
    """retry / archive; a group or all is worked through in calls of ``--limit``."""
    if getattr(args, "all", False) and not args.yes:
        raise CliError("--all sends every dead letter back: add --yes to confirm")
    body: dict[str, Any] = {"reason": args.reason, "limit": args.limit}
    if args.ids:
        body["ids"] = args.ids
    elif args.group:
        body["group"] = {"reason_code": args.group, "partner": args.partner, "type": args.type}
    else:
        body["all"] = True
    timeout = 30.0
    if args.dlq == "retry":
        body["rate_per_s"] = args.rate
        timeout += args.limit / args.rate
    total = {"done": 0, "skipped": 0, "failed": 0}
    rc = 0
    while True:
        res = await api.call("POST", f"/admin/dead-letters/{args.dlq}", body=body,
                             timeout=timeout)
        if args.json:
            print(json.dumps(res, ensure_ascii=False, indent=2), file=out)
        else:
            for p in res["skipped"]:
                print(f"  skipped {p['id']}: {p['reason']}", file=out)
            for p in res["failed"]:
                print(f"  failed  {p['id']}: {p['reason']}", file=out)
        total["done"] += len(res["done"])
        total["skipped"] += len(res["skipped"])
        total["failed"] += len(res["failed"])
        rc = 1 if res["failed"] or rc else 0
        # Skipped rows stay dead and are seen again: go on only while a call gets work done.
        if res["remaining"] <= 0 or not res["done"] or "ids" in body:
            break
    verb = "retried" if args.dlq == "retry" else "archived"
    if not args.json:
        print(f"{verb} {total['done']}, skipped {total['skipped']}, failed {total['failed']}, "
              f"remaining {res['remaining']} (audit #{res['audit_id']})", file=out)
    return rc


async def _audit(api: _Api, args: argparse.Namespace, out: TextIO) -> int:
    rows = await api.call("GET", "/admin/audit", params=_params(
        args, "actor", "action", "outcome", "since", "until", "limit"))
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2), file=out)
        return 0
    for e in rows:
        detail = json.dumps(e["detail"], ensure_ascii=False)
        print(f"#{e['id']:<6} {e['at'][:19]}  {e['actor']} ({e['role']})  {e['action']}  "
              f"{e['target']}  {e['outcome']}  {_short(detail, 100)}", file=out)
    return 0


async def run(argv: Sequence[str] | None = None, *,
              transport: httpx.AsyncBaseTransport | None = None,
              out: TextIO | None = None) -> int:
    """The CLI; ``transport`` lets tests talk to an in-process app."""
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    token = args.token or os.environ.get("HUB_ADMIN_TOKEN")
    if not token:
        print("ops_cli: no token: pass --token or set HUB_ADMIN_TOKEN", file=sys.stderr)
        return 2
    async with httpx.AsyncClient(base_url=args.url.rstrip("/"), transport=transport,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        api = _Api(client)
        try:
            if args.command == "dlq":
                return await _dlq(api, args, out)
            return await _audit(api, args, out)
        except CliError as exc:
            print(f"ops_cli: {exc}", file=sys.stderr)
            return 1


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(argv))


if __name__ == "__main__":
    sys.exit(main())
