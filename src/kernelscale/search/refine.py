"""`refine`: one chain, each proposal carrying the last verdict (the seed workflow of NVIDIA's R1
experiment), and the chain machinery that `parallel` and `evolve` run several of at once.

Budget accounting belongs here, not to `evaluate`: a chain *reserves* an attempt before it asks
the proposer, so concurrent chains never overshoot an attempt budget with proposals nobody may
verify, and counts it in `budget.used_attempts` once verified. A proposal in flight is abandoned
(its request cancelled) when the wall budget ends, when some chain reaches the target speedup,
or when another chain's proposer fails; a verification in flight always finishes and is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence

__all__ = ["best_attempt", "rank_key"]  # re-exported: the rule lives in propose.best

from kernelscale.problems.problem import Problem
from kernelscale.propose.base import Attempt, Candidate, Proposer, ProposerError, ProposerStopped
from kernelscale.propose.best import best_attempt, rank_key, trusted
from kernelscale.search.base import Budget, Evaluate

ProposeCall = Callable[[], Awaitable[list[Candidate]]]


class RunState:
    """What the chains of one strategy run share: the budget, the best attempt, the stop signal."""

    def __init__(self, budget: Budget, history: Sequence[Attempt]):
        self.budget = budget
        self.best = best_attempt(history)
        self.stop = asyncio.Event()
        self.error: ProposerError | None = None
        self._reserved = 0  # attempts being proposed or verified, not yet in budget.used_attempts

    def finished(self) -> bool:
        return self.stop.is_set() or self.budget.exhausted(self.best.best_speedup if self.best else None)

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    async def step(self, call: ProposeCall, evaluate: Evaluate, tag: dict) -> Attempt | None:
        """Reserve, propose, verify one candidate; None when this chain should end."""
        if self.finished() or not self._reserve():
            return None
        try:
            candidates = await self._unless_stopped(call())
        except ProposerError as exc:
            self._reserved -= 1
            self.error = self.error or exc
            # A spending cap ends only the chain that hit it: the requests already made were paid
            # for, so their answers are still verified. Any other failure stops every chain.
            if not (isinstance(exc, ProposerStopped) and exc.reason == "budget"):
                self.stop.set()
            return None
        if not candidates:  # stopped meanwhile, or the proposer has nothing more (replay spent)
            self._reserved -= 1
            return None
        candidate = candidates[0]
        candidate.provenance.update(tag)
        try:
            attempt = await evaluate(candidate)
        finally:
            self._reserved -= 1
        self._count(attempt)
        return attempt

    def _reserve(self) -> bool:
        limit = self.budget.attempts
        if limit is not None and self.budget.used_attempts + self._reserved >= limit:
            return False
        self._reserved += 1
        return True

    def _count(self, attempt: Attempt) -> None:
        self.budget.used_attempts += 1
        if trusted(attempt) and (self.best is None or rank_key(attempt) > rank_key(self.best)):
            self.best = attempt
        if self.finished():
            self.stop.set()  # wakes the other chains' proposals in flight: nobody will verify them

    async def _unless_stopped(self, call: Awaitable[list[Candidate]]) -> list[Candidate] | None:
        """The proposal, or None if the run stops (deadline, target, another chain's error) first."""
        task = asyncio.ensure_future(call)
        stopper = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait(
                {task, stopper}, timeout=self.budget.remaining_s(), return_when=asyncio.FIRST_COMPLETED
            )
            if task.done():
                return task.result()
            self.stop.set()  # only the deadline or a stop can get here; either ends every chain
            return None
        finally:
            stopper.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def run_chain(
    state: RunState, problem: Problem, proposer: Proposer, evaluate: Evaluate, chain: list[Attempt], tag: dict
) -> list[Attempt]:
    """Propose from the chain so far, verify, append; until the run or the proposer is done."""
    while True:
        attempt = await state.step(lambda: proposer.propose(problem, list(chain), 1), evaluate, tag)
        if attempt is None:
            return chain
        chain.append(attempt)


def split_chains(history: Sequence[Attempt], count: int) -> list[list[Attempt]]:
    """A resumed run's attempts back into `count` chains by the `chain` tag they were stored with."""
    chains: list[list[Attempt]] = [[] for _ in range(count)]
    for attempt in history:
        index = attempt.candidate.provenance.get("chain", 0)
        chains[index % count if isinstance(index, int) else 0].append(attempt)
    return chains


async def run_all(coroutines: Iterable[Awaitable]) -> None:
    """Run concurrently; a failure cancels the rest and is raised as itself, not as a group."""
    try:
        async with asyncio.TaskGroup() as group:
            for coroutine in coroutines:
                group.create_task(coroutine)
    except BaseExceptionGroup as group_error:
        raise group_error.exceptions[0] from None


class RefineStrategy:
    """One chain; a resumed run continues from its last stored attempt instead of restarting."""

    name = "refine"

    async def run(
        self,
        problem: Problem,
        proposer: Proposer,
        evaluate: Evaluate,
        budget: Budget,
        history: Sequence[Attempt],
    ) -> None:
        state = RunState(budget, history)
        await run_chain(
            state, problem, proposer, evaluate, list(history), {"strategy": self.name, "chain": 0}
        )
        state.raise_error()
