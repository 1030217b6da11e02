"""The harness serves the simulated 电子处方中心 (``sims["prescription"]``) and points the
hub's settings at it with a key set made for the run: a client built from those settings,
as the hub builds it, verifies the center's answers and refuses one with a wrong key."""

from __future__ import annotations

import random

import pytest

from adapters.prescription.client import build_prescription_client
from config.settings import load_settings
from contracts.prescription import PrescriptionRefused
from simulators.core import CoreStore
from simulators.harness import fast_policies, running_stack
from simulators.prescription import PrescriptionSim

pytestmark = pytest.mark.integration


async def test_the_stack_reaches_the_center_with_keys_made_for_the_run() -> None:
    s = load_settings()
    store = CoreStore.seed(1, 2, rng_seed=random.randrange(10**9))
    async with running_stack(s, store=store, overrides=fast_policies(s)) as st:
        sim = st.sims["prescription"]
        assert isinstance(sim, PrescriptionSim)
        assert st.settings.partners["prescription"].endpoint == sim.url
        assert st.settings.prescription.center_public_key == sim.center.keys.public_key
        client = build_prescription_client(st.settings)
        try:
            status = await client.query_prescription("RX-VALID")
            assert status.valid and status.id_number == sim.center.certno
            sim.switch("bad_signature", "wrong_key")
            with pytest.raises(PrescriptionRefused) as e:
                await client.query_prescription("RX-VALID")
            assert e.value.cause == "signature"
            assert sim.state.log.calls == 2
        finally:
            await client.aclose()
