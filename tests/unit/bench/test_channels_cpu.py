"""bench/channels splits the machine's CPU by who used it: a busy child of the "hub"
counts as the hub's, not the bench's, and the machine's total holds both."""

import os
import signal
import subprocess
import sys
import time

import pytest

from bench.channels import _per_s, machine_cpu_s

# burns 0.4 s of CPU, then stays alive (a dead process's CPU leaves /proc with it)
BURN = ("import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass\n"
        "time.sleep(5)\n")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_busy_grandchild_of_the_hub_is_counted_as_the_hub() -> None:
    # the "hub" is a shell whose child burns 0.4 s of CPU, as a --workers process would
    hub = subprocess.Popen(["sh", "-c", f'"{sys.executable}" -c "$0"; sleep 1', BURN],
                           start_new_session=True)
    try:
        time.sleep(0.05)
        before = machine_cpu_s(hub.pid)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until the burner has used its 0.4 s
            used = _per_s(before, machine_cpu_s(hub.pid), 1.0)
            if used["hub"] >= 0.3:
                break
            time.sleep(0.05)
        assert 0.3 <= used["hub"] <= 0.6
        assert used["bench"] < 0.2  # this process only polled
        # /proc/stat is read a moment after the processes' stats, in ticks of 10 ms: a tick
        # or two either way
        assert used["machine"] >= used["hub"] - 0.03
    finally:
        os.killpg(hub.pid, signal.SIGKILL)
        hub.wait()
