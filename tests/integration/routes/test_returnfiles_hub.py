"""F5 through the hub: tax's FTP (pyftpdlib over a socket) -> the hub's service -> core's
到账 batches at the core simulator (H3101), each batch once even when fetched twice."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from pydantic import SecretStr

from adapters.core.simulator import CoreStore
from adapters.simkit import Fault
from adapters.tax.ftp_simulator import TaxFtpSimulator
from config.settings import load_settings
from contracts.returnfile import synthetic_records
from tools.harness import fast_policies, running_stack

pytestmark = pytest.mark.integration


async def test_return_files_reach_core_as_arrival_batches_once(tmp_path: Path) -> None:
    with TaxFtpSimulator(tmp_path / "ftp") as ftp:
        s = load_settings()
        rf = s.returnfiles.model_copy(update={
            "port": ftp.port, "enabled": False, "password": SecretStr(ftp.password), "batch_size": 100,
            "spool_dir": str(tmp_path / "spool")})
        store = CoreStore.seed(1, 2, rng_seed=random.randrange(10**9))
        async with running_stack(s, store=store, overrides=fast_policies(s) | {
                "returnfiles": rf}) as st:
            st.core_state.faults[:] = [Fault(kind="http_5xx", count=2, operation="H3101")]
            name = ftp.drop_file("employee_pay", 450, seed=7)
            service = st.hub.returnfiles
            assert service is not None
            polls = []
            for _ in range(5):  # core fails twice: delivery pauses, the next poll resumes
                polls.append(await service.poll_once())
                if any(r.status == "delivered" for r in polls[-1]):
                    break
            assert [r.status for r in polls[0]] == ["stored"]
            assert len(polls) == 3, polls
            arrivals = sum(1 for r in synthetic_records("employee_pay", 450, seed=7)
                           if r.result == "1")
            assert sum(store.arrivals.values()) == arrivals
            assert st.core_state.log.summary()["duplicates"] == {}
            ftp.duplicate(name, "0002")            # tax sends the same bytes again
            assert {r.status for r in await service.poll_once()} <= {"duplicate"}
            assert sum(store.arrivals.values()) == arrivals
