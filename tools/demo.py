"""``main.py demo``: the hub's main job on embedded defaults, with a realistic scenario.

Core registers ``count`` employees (职工参保登记) and emits them to the hub; the
tax simulator fails transiently at ``transient_rate``, rejects some requests
outright, rejects some in its asynchronous feedback, and is down for two
people for good; a few events carry a bad ID checksum. The hub must end every
one delivered, rejected with a reason, or dead-lettered; the summary counts
them and the side effects seen at the partners. The rest of the hub's job follows
(``tools.demo_more``), then a resend (补发) round, and the demo ends with one line per
flow F1-F15, counted at the simulators (``tools.demo_flows``).
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from pydantic import SecretStr

from config.settings import HubSettings
from simulators.core import CoreStore, emit_enrollments
from simulators.harness import Stack, fast_policies, running_stack, wait_until_settled
from simulators.simkit import Fault
from simulators.tax_ftp import TaxFtpSimulator
from storage.deadletters import DeadLetterStore
from tools.demo_flows import FlowBook

__all__ = ["run_demo"]


async def _more(st: Stack, ftp: TaxFtpSimulator, flows: FlowBook) -> tuple[list[str], bool]:
    """Catalogue, files, batches, channels and resends, after the enrollment wave settled."""
    from tools.demo_difficulty import assistance_round, difficulty_round
    from tools.demo_drugs import drugs_round
    from tools.demo_fidelity import fidelity_round
    from tools.demo_more import (
        catalogue_round,
        channels_round,
        files_round,
        resend_round,
        student_batch_round,
    )
    from tools.demo_reconciliation import reconciliation_round
    from tools.demo_refunds import refunds_round
    from tools.demo_serious_illness import serious_illness_round
    from tools.demo_transfer import transfer_round
    from tools.demo_union import union_round
    from tools.demo_voucher import voucher_round
    from tools.demo_warnings import warnings_round

    lines: list[str] = []
    ok = True
    async with httpx.AsyncClient(timeout=30) as http:
        for name, part in (("catalogue", catalogue_round(st, http, flows)),
                           ("files", files_round(st, http, ftp, flows)),
                           ("student batch", student_batch_round(st, http)),
                           ("channels", channels_round(st, http, flows)),
                           ("resend", resend_round(st, http, flows)),
                           ("fidelity", fidelity_round(st, http))):
            got, fine = await part
            lines += got if fine else [*got, f"  demo part {name}: did not add up"]
            ok = ok and fine
        for number, department in ((7, difficulty_round(st, http)),
                                   (7, assistance_round(st, http)),
                                   (8, warnings_round(st, http)),
                                   (12, union_round(st, http)),
                                   (14, reconciliation_round(st, http)),
                                   (9, transfer_round(st, http)),
                                   (10, refunds_round(st, http)),
                                   (11, drugs_round(st, http)),
                                   (15, serious_illness_round(st, http)),
                                   (13, voucher_round(st, http))):
            got, flow = await department  # the departments (issue 11), counted at their sims
            lines += got
            flows.add(number, flow)
    return lines, ok


async def run_demo(settings: HubSettings, *, count: int = 200, transient_rate: float = 0.10,
                   timeout: float = 120.0) -> int:
    seed = int(time.time())
    store = CoreStore.seed(max(1, count // 20), count, rng_seed=seed)
    persons = [p.id_number for p in store.persons.values()]
    feedback_rejects = {pid[-5:-1] for pid in persons[7::31]}
    t0 = time.monotonic()
    ftp = TaxFtpSimulator(Path(tempfile.mkdtemp(prefix="demo-ftp-")))
    ftp.start()
    rf = settings.returnfiles.model_copy(update={
        "port": ftp.port, "enabled": False, "password": SecretStr(ftp.password),
        "spool_dir": f".run/spool/demo-{seed}"})
    async with running_stack(settings, store=store, reject_suffixes=feedback_rejects,
                             namespace=f"demo{seed % 100000}",
                             database_url=f"sqlite+aiosqlite:///./.run/demo-{seed}.db",
                             overrides=fast_policies(settings) | {"returnfiles": rf}) as st:
        st.tax_state.faults[:] = [
            *(Fault(kind="http_5xx", match=pid, operation="EmployeeEnroll")
              for pid in persons[3:5]),                                 # down for good
            Fault(kind="reject", rate=0.03, code="TX102", text="单位未在税务机关登记",
                  operation="EmployeeEnroll"),
            Fault(kind="http_5xx", rate=transient_rate, operation="EmployeeEnroll"),
            Fault(kind="duplicate", rate=0.05, operation="EmployeeEnroll"),
        ]
        st.core_state.faults[:] = [Fault(kind="http_5xx", rate=0.05)]
        print(f"demo: {count} employee enrollments (职工参保登记) core -> hub -> tax -> core;"
              f" tax fails {transient_rate:.0%} transiently, namespace {st.settings.namespace}")
        from tools.demo_more import sync_flow

        flows = FlowBook()
        core0, tax0 = st.core_state.log.snapshot(), st.tax_state.log.snapshot()
        door: Counter[int] = Counter()  # the hub's answers to core's events, by status class

        async def answered(r: httpx.Response) -> None:
            door[r.status_code // 100] += 1

        async with httpx.AsyncClient(timeout=30, event_hooks={"response": [answered]}) as client:
            await emit_enrollments(st.hub_url, store, count, client=client,
                                   secret=st.partner_secret("core"), concurrency=20,
                                   invalid_every=40)
        counts = await wait_until_settled(st, count, timeout)
        elapsed = time.monotonic() - t0
        flows.add(2, await sync_flow(st, core0, tax0, sent=count, refused=door[4]))
        journal = st.hub.deps.journal
        rejected = await journal.reasons("rejected", limit=8)
        dead = await journal.reasons("dead", limit=5)
        parked = await DeadLetterStore(journal.engine).groups()
        tax, core = await st.effects("tax"), await st.effects("core")
        extra_lines, extra_ok = await _more(st, ftp, flows)
    retrying = sum(n for s, n in counts.items() if s not in ("delivered", "rejected", "dead"))
    print(f"\ndemo summary after {elapsed:.1f}s")
    print(f"  delivered (tax accepted, core updated) {counts.get('delivered', 0):5d}")
    print(f"  rejected with reason                   {counts.get('rejected', 0):5d}")
    for code, reason, n in rejected:
        print(f"      {n:4d}  [{code}] {reason[:90]}")
    print(f"  retrying / in flight                   {retrying:5d}")
    print(f"  dead-lettered                          {counts.get('dead', 0):5d}")
    for code, reason, n in dead:
        print(f"      {n:4d}  [{code}] {reason[:90]}")
    print(f"  dead-letter archive (for operations): {sum(g.count for g in parked)} messages"
          + "".join(f"\n      {g.count:4d}  {g.partner}/{g.type} [{g.reason_code}]"
                    for g in parked))
    print(f"  tax side effects: {tax['effects']} distinct={tax['distinct']} "
          f"duplicates={len(tax['duplicates'])} replays_absorbed={tax['replays']}")
    print(f"  core side effects: {core['effects']} duplicates={len(core['duplicates'])} "
          f"replays_absorbed={core['replays']}")
    print("\nthe rest of the hub's job (each counted at the partner simulators):")
    for line in extra_lines:
        print(line)
    ftp.stop()
    total = sum(counts.values())
    problems = flows.problems()
    for problem in problems:
        print(f"  flow problem: {problem}")
    ok = retrying == 0 and not tax["duplicates"] and total == count and extra_ok and \
        not problems
    print(f"demo: {'OK' if ok else 'INCOMPLETE'}: {total} transactions, every one "
          f"{'reached an outcome' if retrying == 0 else 'not yet settled'}")
    for line in flows.lines():
        print(line)
    return 0 if ok else 1
