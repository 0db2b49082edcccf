"""Wall and CPU time per phase of a run, for ``RunStats.timings`` and ``rfm score --profile``.

Phases of :func:`rfm_fast.score`:

* ``read``: reading and decoding the input. It runs in a reader thread of its own, beside the
  aggregation: its wall time is the time the aggregation waited for the next batch, its CPU time
  the reader thread's own.
* ``aggregate``: folding the batches into per-customer totals (CPU: the whole process during the
  loop, less the reader thread's).
* ``finish``: the last folds, and sorting the customers by key with their totals.
* ``score``: metrics, scores, edges, segments and the result table.

CPU seconds can exceed wall seconds: several threads work at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

PHASES = ("read", "aggregate", "finish", "score")


@dataclass(frozen=True)
class PhaseTime:
    """Seconds of wall-clock time and of CPU time (all threads) that one phase took."""

    wall_s: float
    cpu_s: float


@dataclass
class PhaseTimer:
    """Accumulates :class:`PhaseTime` per phase name."""

    phases: dict[str, PhaseTime] = field(default_factory=dict)

    def add(self, phase: str, wall_s: float, cpu_s: float) -> None:
        """Add seconds to ``phase`` (created at zero)."""
        old = self.phases.get(phase, PhaseTime(0.0, 0.0))
        self.phases[phase] = PhaseTime(old.wall_s + wall_s, old.cpu_s + max(cpu_s, 0.0))

    def measure(self, phase: str) -> _Measured:
        """A context manager that adds the wall and process CPU time of its block to
        ``phase``."""
        return _Measured(self, phase)

    def result(self) -> dict[str, PhaseTime]:
        """The phases in the order of :data:`PHASES` (then any other, in insertion order)."""
        order = [p for p in PHASES if p in self.phases]
        order += [p for p in self.phases if p not in PHASES]
        return {p: self.phases[p] for p in order}


class _Measured:
    def __init__(self, timer: PhaseTimer, phase: str) -> None:
        self.timer, self.phase = timer, phase

    def __enter__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def __exit__(self, *exc: object) -> None:
        self.timer.add(self.phase, time.perf_counter() - self.wall, time.process_time() - self.cpu)
