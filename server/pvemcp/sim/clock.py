"""The simulator's clock: real time plus test-controlled jumps, and a faster clock for task progress.

Two readings are needed:

* ``now()`` — the cluster's wall clock (epoch seconds). It moves with real time and jumps forward by
  :meth:`SimClock.advance`; tickets expire by it (2 h lifetime), task start times and backup archive names
  use it.
* ``task_time()`` — how far simulated work has progressed. Real time counts ``task_speed`` times, so a
  20-second clone finishes in 0.4 s at ``task_speed=50``; :meth:`advance` moves it by the same seconds as
  the wall clock, so a test can also finish a task deterministically by advancing the clock.
  ``task_speed=0`` freezes the task clock: tasks move only when the clock is advanced — the mode for
  tests that must observe a task while it runs without depending on timing.

Nothing runs in the background: tasks are brought up to date lazily whenever the state is looked at
(see ``tasks.TaskManager.tick``), which makes the simulator deterministic for a given sequence of
requests and clock advances.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class SimClock:
    """Wall clock and task clock of one simulator instance."""

    def __init__(
        self,
        task_speed: float = 1.0,
        start_epoch: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if task_speed < 0:
            raise ValueError("task_speed must not be negative")
        self.task_speed = task_speed
        self._monotonic = monotonic
        self._t0 = monotonic()
        self._epoch0 = time.time() if start_epoch is None else start_epoch
        self._advanced = 0.0

    def _elapsed(self) -> float:
        return self._monotonic() - self._t0

    def now(self) -> float:
        """Epoch seconds on the simulated cluster."""
        return self._epoch0 + self._elapsed() + self._advanced

    def task_time(self) -> float:
        """Monotonic seconds of simulated work (real time × task_speed + advances)."""
        return self._elapsed() * self.task_speed + self._advanced

    def advance(self, seconds: float) -> None:
        """Jump both clocks forward (never backwards: tickets and tasks assume monotonic time)."""
        if seconds < 0:
            raise ValueError("the simulated clock cannot go backwards")
        self._advanced += seconds
