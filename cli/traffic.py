"""``hub traffic``: make the simulators of ``make simulate`` send, and break them on purpose.

Talks to the simulators' traffic door (``simulators.traffic``, ``--sim-url``, token
``--sim-token``). Large counts go in rounds of ``--chunk`` with a progress bar; the
summary says how many the hub accepted, refused (4xx, with a reason) or failed on.
Exit 1 when the hub refused or failed some, 3 when the door or the hub is unreachable.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import typer

from cli.common import EXIT_FAILED, EXIT_UNREACHABLE, Api, common, emit, progress

__all__ = ["traffic_app"]

traffic_app = typer.Typer(help="Traffic on request from the simulators (make simulate), and "
                          "their fault switches.", no_args_is_help=True)

Count = Annotated[int, typer.Option("--count", "-n", min=1, help="how many")]
Chunk = Annotated[int, typer.Option("--chunk", min=1, help="sent per call to the door")]


def _send(path: str, body: dict[str, Any], count: int, chunk: int, label: str) -> None:
    """``count`` in rounds of ``chunk``; sums the door's answers; exit code by outcome."""
    total = {"sent": 0, "accepted": 0, "refused": 0, "failed": 0}
    ids: list[str] = []
    with Api.control() as api, progress(label, count) as advance:
        left = count
        while left > 0:
            n = min(chunk, left)
            answer = api.call("POST", path, body={**body, "count": n})
            for key in total:
                total[key] += int(answer.get(key, 0))
            ids += answer.get("ids", [])
            advance(n)
            left -= n

    def lines(_: Any) -> Iterator[str]:
        yield (f"{label}: sent {total['sent']}, hub accepted {total['accepted']}, refused "
               f"{total['refused']}, failed {total['failed']}")
        if ids:
            yield "  " + ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")

    emit({**total, "ids": ids}, lines)
    if total["failed"]:
        raise typer.Exit(EXIT_UNREACHABLE)
    if total["refused"]:
        raise typer.Exit(EXIT_FAILED)


@traffic_app.command("core", help="Core emits N events to the hub's core door, signed as "
                     "core: H2101 职工参保登记 (fresh employees) or another F2 infno.")
@common
def core(type_: Annotated[str, typer.Option("--type", help="core's infno")] = "H2101",
         count: Count = 10, chunk: Chunk = 100,
         invalid_every: Annotated[int, typer.Option(min=0, help="every k-th with a bad ID "
                                                    "number (refused by the hub)")] = 0
         ) -> None:
    _send("/traffic/core", {"type": type_, "invalid_every": invalid_every}, count, chunk,
          f"core {type_}")


@traffic_app.command("channel", help="A channel (my_nanjing 我的南京, gov_office 政务办, "
                     "online_hall 网厅, hrss 人社) submits N applications, fresh ID numbers.")
@common
def channel(name: Annotated[str, typer.Argument(help="the channel")] = "my_nanjing",
            type_: Annotated[str, typer.Option("--type", help="application type")
                             ] = "resident_enroll",
            count: Count = 10, chunk: Chunk = 50) -> None:
    _send("/traffic/channel", {"channel": name, "type": type_}, count, chunk,
          f"{name} {type_}")


@traffic_app.command("tax", help="Tax pushes N F3 notifications (SOAP, signed as tax), or "
                     "--returnfile drops a return file (回盘) of N lines on its FTP.")
@common
def tax(count: Count = 5, chunk: Chunk = 50,
        returnfile: Annotated[bool, typer.Option("--returnfile")] = False,
        file_kind: Annotated[str, typer.Option(help="unit_pay, employee_pay, resident_pay")
                             ] = "unit_pay") -> None:
    if returnfile:
        with Api.control() as api:
            emit(api.call("POST", "/traffic/tax", body={
                "kind": "returnfile", "count": count, "file_kind": file_kind}),
                lambda a: iter([f"tax dropped {', '.join(a.get('ids', []))} ({count} lines)"]))
        return
    _send("/traffic/tax", {"kind": "push"}, count, chunk, "tax pushes")


@traffic_app.command("department", help="A F7 department sends its month's list of N rows "
                     "(civil_affairs, trade_union, veterans, agriculture).")
@common
def department(name: Annotated[str, typer.Argument()] = "civil_affairs",
               count: Count = 10,
               bad: Annotated[int, typer.Option(min=0, help="bad rows the hub must "
                                                "refuse")] = 0,
               month: Annotated[str, typer.Option(help="YYYY-MM (default: this month)")
                                ] = "") -> None:
    _send("/traffic/department", {"department": name, "bad": bad, "month": month}, count,
          count, f"{name} list")


@traffic_app.command("fault", help="Switch a fault on at a simulator (core, tax, channels, "
                     "departments, ...): --mode 5xx|4xx|timeout|slow|reject|duplicate|"
                     "soap_fault|bad_signature.")
@common
def fault(sim: Annotated[str, typer.Argument(help="the simulator")],
          mode: Annotated[str, typer.Option(help="what goes wrong")] = "5xx",
          rate: Annotated[float, typer.Option(min=0.0, max=1.0)] = 1.0,
          calls: Annotated[int | None, typer.Option("--calls", min=0,
                                                    help="only this many calls")] = None,
          delay: Annotated[float, typer.Option(min=0.0, help="seconds (slow, timeout)")] = 0.0,
          operation: Annotated[str, typer.Option(help="only this operation")] = "") -> None:
    with Api.control() as api:
        faults = api.call("POST", f"/traffic/faults/{sim}", body={
            "mode": mode, "rate": rate, "count": calls, "delay_s": delay,
            "operation": operation})
    emit(faults, lambda fs: (f"{sim}: {f.get('kind')} rate {f.get('rate')}"
                             f"{' op ' + f['operation'] if f.get('operation') else ''}"
                             for f in fs))


@traffic_app.command("heal", help="Clear every fault switch of a simulator.")
@common
def heal(sim: Annotated[str, typer.Argument(help="the simulator")]) -> None:
    with Api.control() as api:
        emit(api.call("DELETE", f"/traffic/faults/{sim}"),
             lambda _: iter([f"{sim}: faults cleared"]))


@traffic_app.command("effects", help="The side effects counted at a simulator.")
@common
def effects(sim: Annotated[str, typer.Argument(help="the simulator")]) -> None:
    with Api.control() as api:
        emit(api.call("GET", f"/traffic/effects/{sim}"))


@traffic_app.command("status", help="What the door can drive: the hub, the simulators.")
@common
def status() -> None:
    with Api.control() as api:
        emit(api.call("GET", "/traffic"))
