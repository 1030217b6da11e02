"""F8 高额费用预警 from the command line, through the hub's admin API.

    python -m tools.warnings_cli run 202611 [--hub URL] [--token T]
    python -m tools.warnings_cli status 202611 [--detail] [--department civil_affairs]
    python -m tools.warnings_cli resend 202611 civil_affairs [--only-unacknowledged]

The token (``--token`` or ``HUB_TOKEN``) needs the operations or caseworker role to run,
caseworker to resend; any role reads the status. Answers are printed as JSON (masked
by the hub).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import httpx

from contracts.warnings import DEPARTMENTS

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.warnings_cli", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hub", default=os.environ.get("HUB_URL", "http://127.0.0.1:8000"))
    p.add_argument("--token", default=os.environ.get("HUB_TOKEN", ""))
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a month (YYYYMM)")
    run.add_argument("month")
    st = sub.add_parser("status", help="a month's progress and acknowledgements")
    st.add_argument("month")
    st.add_argument("--detail", action="store_true")
    st.add_argument("--department", choices=sorted(DEPARTMENTS))
    rs = sub.add_parser("resend", help="补发 a department's list of a month")
    rs.add_argument("month")
    rs.add_argument("department", choices=sorted(DEPARTMENTS))
    rs.add_argument("--only-unacknowledged", action="store_true")
    return p


def call(args: argparse.Namespace, client: httpx.Client) -> httpx.Response:
    base = f"{args.hub.rstrip('/')}/admin/warnings/runs"
    if args.command == "run":
        return client.post(base, json={"month": args.month})
    if args.command == "status":
        params: dict[str, Any] = {"detail": str(args.detail).lower()}
        if args.department:
            params["department"] = args.department
        return client.get(f"{base}/{args.month}", params=params)
    return client.post(f"{base}/{args.month}/resend",
                       json={"department": args.department,
                             "only_unacknowledged": args.only_unacknowledged})


def main(argv: list[str] | None = None, *, transport: httpx.BaseTransport | None = None) -> int:
    args = _parser().parse_args(argv)
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    with httpx.Client(headers=headers, timeout=60, transport=transport) as client:
        try:
            r = call(args, client)
        except httpx.HTTPError as exc:
            print(f"hub unreachable: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
    try:
        body: Any = r.json()
    except ValueError:
        body = r.text
    print(json.dumps(body, ensure_ascii=False, indent=2))
    return 0 if r.status_code < 400 else 1


if __name__ == "__main__":
    sys.exit(main())
