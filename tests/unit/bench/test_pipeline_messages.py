"""bench.pipeline's messages are distinct facts: a repeated one is acked by the hub as a
duplicate with no output, and the benchmark's sink would never reach its count."""

from __future__ import annotations

import json

from bench.pipeline import make_messages


def test_no_two_messages_are_the_same_fact() -> None:
    # this seed drew one person twice (with the same unit) before people were drawn anew
    bodies = make_messages(5000, seed=1796123621)
    keys = [json.loads(b)["idempotency_key"] for b in bodies]
    people = [json.loads(b)["payload"]["id_number"] for b in bodies]
    assert len(set(keys)) == len(keys) == 5000
    assert len(set(people)) == len(people)
