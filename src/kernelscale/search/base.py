"""The strategy protocol: what to ask for next, within a budget."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from kernelscale.problems.problem import Problem
from kernelscale.propose.base import Attempt, Candidate, Proposer


@dataclass
class Budget:
    """Wall-time and/or attempt budget, with an optional early stop at a target speedup.

    A resumed run continues its clock and its count: `spent_before` seconds and `used_attempts`
    start from what the run used before, and the limits are totals for the run.
    """

    seconds: float | None = None
    attempts: int | None = None
    target_speedup: float | None = None
    started: float = field(default_factory=time.monotonic)
    used_attempts: int = 0
    spent_before: float = 0.0

    def elapsed(self) -> float:
        """Seconds this problem's search has run, earlier sessions included."""
        return self.spent_before + self.elapsed_here()

    def elapsed_here(self) -> float:
        """Seconds since this session's search started."""
        return time.monotonic() - self.started

    def remaining_s(self) -> float | None:
        return None if self.seconds is None else max(0.0, self.seconds - self.elapsed())

    def exhausted(self, best_speedup: float | None = None) -> bool:
        if self.seconds is not None and self.elapsed() >= self.seconds:
            return True
        if self.attempts is not None and self.used_attempts >= self.attempts:
            return True
        return bool(self.target_speedup and best_speedup and best_speedup >= self.target_speedup)


# Verifies one candidate and returns the stored attempt; the loop owns store, cache and progress.
Evaluate = Callable[[Candidate], Awaitable[Attempt]]


class Strategy(Protocol):
    """Drives a proposer against the verifier until the budget is spent.

    `evaluate` may be awaited concurrently (the pool has one worker per GPU); strategies that
    overlap proposing with verifying keep the GPUs busy. `history` holds the attempts made
    before this call (a resumed run), so a strategy can continue rather than restart.
    """

    name: str

    async def run(
        self,
        problem: Problem,
        proposer: Proposer,
        evaluate: Evaluate,
        budget: Budget,
        history: Sequence[Attempt],
    ) -> None: ...
