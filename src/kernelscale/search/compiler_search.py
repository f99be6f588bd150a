"""`compiler`: the attention compiler's search, driven under the budget.

`workers` evaluations run at once (one per GPU worker of the verifier pool); each asks the
proposer for the next untried config given every attempt so far, so a measured speedup steers
the next proposals toward its neighbours. Budget accounting and stopping (deadline, target,
proposer failure) are the shared chain machinery of `refine`.
"""

from __future__ import annotations

from collections.abc import Sequence

from kernelscale.problems.problem import Problem
from kernelscale.propose.base import Attempt, Proposer
from kernelscale.search.base import Budget, Evaluate
from kernelscale.search.refine import RunState, run_all


class CompilerSearch:
    name = "compiler"

    def __init__(self, workers: int = 1):
        self.workers = max(1, int(workers))

    async def run(
        self,
        problem: Problem,
        proposer: Proposer,
        evaluate: Evaluate,
        budget: Budget,
        history: Sequence[Attempt],
    ) -> None:
        state = RunState(budget, history)
        attempts = list(history)  # shared by the workers: every verdict informs every next proposal

        async def worker(index: int) -> None:
            tag = {"strategy": self.name, "worker": index}
            while True:
                attempt = await state.step(
                    lambda: proposer.propose(problem, list(attempts), 1), evaluate, tag
                )
                if attempt is None:
                    return
                attempts.append(attempt)

        await run_all(worker(i) for i in range(self.workers))
        state.raise_error()
