"""Random people for integration tests, each a different person.

Synthetic ID numbers of one birth date, area (and sex) share 1,000 (500) sequence
numbers; tests that draw several such people at random must not draw one twice, or
two of their people become one at the simulators (a flaky failure, about 1 run in 50
for five people).
"""

from __future__ import annotations

import random
from datetime import date

from contracts.ids import make_id_number

__all__ = ["People"]


class People:
    """Hands out ID numbers, never the same one twice."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._issued: set[str] = set()

    def new(self, *, born: date, male: bool | None = None, area: str | None = None) -> str:
        while (id_number := make_id_number(self._rng, born=born, male=male,
                                           area=area)) in self._issued:
            pass
        self._issued.add(id_number)
        return id_number
