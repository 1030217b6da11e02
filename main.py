"""Entry point: ``python main.py ...`` is the ``hub`` command line (``cli.main``, typer).

    python main.py run            the hub: route consumers + HTTP API (default :8000)
    python main.py simulate       partner simulators and the traffic door (hub traffic)
    python main.py demo           hub + simulators + a realistic scenario, then a summary
    python main.py replay PATH    send contract fixtures through a real hub, diff outputs
    python main.py migrate        alembic upgrade head
    python main.py --help         every command (dlq, resend, batches, jobs, traffic, ...)
                                  and the exit codes

HUB_ENV=development for a development hub (make run/simulate/demo set it): the
default is production, where ``run`` and ``returnfiles`` refuse to start while a
secret still has its development default (each one named), and the development
admin tokens are not accepted.
"""

from __future__ import annotations

import sys

__all__ = ["configure_logging", "main"]


def configure_logging(level: str) -> None:
    """The hub's logging set-up (``kernel.logs`` JSON lines when present), kept here for
    callers of ``main.configure_logging``."""
    from cli.hub import configure_logging as configure

    configure(level)


def main(argv: list[str] | None = None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``); its exit code."""
    from cli.main import run_cli

    return run_cli(argv)


if __name__ == "__main__":
    sys.exit(main())
