"""`evolve`: a population of the best correct kernels, improved by mutation and crossover.

Each of `workers` concurrent workers repeats one move:
* nothing correct yet: refine its own chain (the seed workflow, until something passes);
* its last child failed, and fewer than `repairs` times in a row: repair it (feedback on the failure,
  so a promising mutation is not thrown away over a typo);
* otherwise, with probability `crossover` (and a proposer that offers `propose_crossover`), combine
  two parents; else mutate one: the feedback prompt on that parent, asking for a faster kernel.
Parents are chosen by a size-2 tournament, which favours the fastest without starving the rest.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from kernelscale.problems.problem import Problem
from kernelscale.propose.base import Attempt, Proposer
from kernelscale.propose.best import rank_key
from kernelscale.search.base import Budget, Evaluate
from kernelscale.search.refine import ProposeCall, RunState, run_all, split_chains


class Population:
    """The best `size` distinct correct attempts, best first."""

    def __init__(self, size: int, attempts: Sequence[Attempt] = ()):
        self.size = size
        self.members: list[Attempt] = []
        for attempt in attempts:
            self.add(attempt)

    def __len__(self) -> int:
        return len(self.members)

    def add(self, attempt: Attempt) -> None:
        if not attempt.verdict.ok or not attempt.candidate.code.strip():
            return
        if any(m.candidate.code_hash == attempt.candidate.code_hash for m in self.members):
            return
        self.members = sorted(self.members + [attempt], key=rank_key, reverse=True)[: self.size]

    def pick(self, rng: random.Random, exclude: Attempt | None = None) -> Attempt:
        choices = [m for m in self.members if m is not exclude] or self.members
        return min(rng.sample(choices, min(2, len(choices))), key=choices.index)


class EvolveStrategy:
    name = "evolve"

    def __init__(
        self,
        population: int = 8,
        workers: int = 4,
        crossover: float = 0.3,
        repairs: int = 2,
        seed: int | None = None,
    ):
        if population < 1 or workers < 1:
            raise ValueError("evolve needs a population and at least one worker")
        self.population, self.workers, self.crossover, self.repairs = population, workers, crossover, repairs
        self.rng = random.Random(seed)

    async def run(
        self,
        problem: Problem,
        proposer: Proposer,
        evaluate: Evaluate,
        budget: Budget,
        history: Sequence[Attempt],
    ) -> None:
        state = RunState(budget, history)
        pool = Population(self.population, history)
        chains = split_chains(history, self.workers)
        await run_all(
            self._worker(index, chain, state, pool, problem, proposer, evaluate)
            for index, chain in enumerate(chains)
        )
        state.raise_error()

    async def _worker(
        self,
        index: int,
        chain: list[Attempt],
        state: RunState,
        pool: Population,
        problem: Problem,
        proposer: Proposer,
        evaluate: Evaluate,
    ) -> None:
        while True:
            lineage, op, call = self._next_move(chain, pool, problem, proposer)
            attempt = await state.step(call, evaluate, {"strategy": self.name, "chain": index, "op": op})
            if attempt is None:
                return
            pool.add(attempt)
            chain = lineage + [attempt]

    def _next_move(
        self, chain: list[Attempt], pool: Population, problem: Problem, proposer: Proposer
    ) -> tuple[list[Attempt], str, ProposeCall]:
        """(the lineage the child extends, the move's name, the proposal to make)."""
        if not len(pool) or (chain and not chain[-1].verdict.ok and _failures(chain) <= self.repairs):
            op = "refine" if not len(pool) else "repair"
            return chain, op, lambda: proposer.propose(problem, list(chain), 1)
        crossover = getattr(proposer, "propose_crossover", None)
        if crossover and len(pool) >= 2 and self.rng.random() < self.crossover:
            first = pool.pick(self.rng)
            parents = [first, pool.pick(self.rng, exclude=first)]
            return parents, "crossover", lambda: crossover(problem, parents, 1)
        parent = pool.pick(self.rng)
        return [parent], "mutate", lambda: proposer.propose(problem, [parent], 1)


def _failures(chain: list[Attempt]) -> int:
    """How many attempts at the end of the chain failed in a row."""
    count = 0
    for attempt in reversed(chain):
        if attempt.verdict.ok:
            break
        count += 1
    return count
