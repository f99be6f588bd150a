"""`parallel`: K independent refine chains at once; the best attempt of any chain wins.

The chains share one budget and one proposer. While one chain's candidate is being verified,
the others' proposals are in flight, so the model and the GPUs both stay busy; diversity comes
from sampling (each chain's first prompt is the same, its answers are not).
"""

from __future__ import annotations

from collections.abc import Sequence

from kernelscale.problems.problem import Problem
from kernelscale.propose.base import Attempt, Proposer
from kernelscale.search.base import Budget, Evaluate
from kernelscale.search.refine import RunState, run_all, run_chain, split_chains


class ParallelStrategy:
    name = "parallel"

    def __init__(self, chains: int | None = None, workers: int | None = None):
        # The search loop passes `workers` (the verifier's real size, at least 4 for LLM
        # strategies); an explicit `chains` wins over it.
        self.chains = chains if chains is not None else (workers if workers is not None else 4)
        if self.chains < 1:
            raise ValueError("parallel needs at least one chain")

    async def run(
        self,
        problem: Problem,
        proposer: Proposer,
        evaluate: Evaluate,
        budget: Budget,
        history: Sequence[Attempt],
    ) -> None:
        state = RunState(budget, history)
        # A resumed run picks each chain up where it stopped (chains are tagged in provenance).
        chains = split_chains(history, self.chains)
        await run_all(
            run_chain(state, problem, proposer, evaluate, chain, {"strategy": self.name, "chain": index})
            for index, chain in enumerate(chains)
        )
        state.raise_error()
