"""refine / parallel / evolve with scripted proposers and a fake `evaluate` (verdicts we construct)."""

import asyncio
import time

import pytest

from kernelscale.problems.problem import Problem
from kernelscale.propose.base import Attempt, Candidate, ProposerError
from kernelscale.propose.replay import ReplayProposer
from kernelscale.search.base import Budget
from kernelscale.search.evolve import EvolveStrategy, Population
from kernelscale.search.parallel import ParallelStrategy
from kernelscale.search.refine import RefineStrategy, best_attempt
from kernelscale.search.strategies import make_strategy, strategy_names
from kernelscale.verify.verdict import Verdict

PROBLEM = Problem(name="ops/fake", source="# reference\n")


def correct(speedup: float) -> Verdict:
    return Verdict("correct", time_ms=1.0 / speedup, baselines={"eager": 1.0}, speedup={"eager": speedup})


def failed(reason: str = "boom") -> Verdict:
    return Verdict("compile_error", reason=reason)


class Scripted:
    """Proposes `# k` for the k-th call; records each history; can be slow or fail."""

    name = "scripted"

    def __init__(self, delay=0.0, fail_from: int | None = None):  # delay: seconds, or call number -> seconds
        self.delay, self.fail_from = delay, fail_from
        self.histories: list[list[str]] = []
        self.in_flight = self.cancelled = 0

    async def propose(self, problem, history, n=1):
        self.histories.append([a.candidate.code for a in history])
        number = len(self.histories)
        if self.fail_from is not None and number >= self.fail_from:
            raise ProposerError("endpoint gone")
        self.in_flight += 1
        try:
            await asyncio.sleep(self.delay(number) if callable(self.delay) else self.delay)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1
        return [Candidate(f"# {number}\n", self.name)]


class Crossing(Scripted):
    def __init__(self):
        super().__init__()
        self.crossings: list[list[str]] = []

    async def propose_crossover(self, problem, parents, n=1):
        self.crossings.append([p.candidate.code for p in parents])
        return [Candidate(f"# cross {len(self.crossings)}\n", self.name)]


class Evaluator:
    """A fake verifier: `judge(candidate, index)` gives the verdict, after `delay` seconds."""

    def __init__(self, judge, delay: float = 0.0, proposer: Scripted | None = None):
        self.judge, self.delay, self.proposer = judge, delay, proposer
        self.attempts: list[Attempt] = []
        self.in_flight = self.max_in_flight = 0
        self.overlapped = False  # a proposal was in flight while this verified

    async def __call__(self, candidate: Candidate) -> Attempt:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await asyncio.sleep(self.delay)
        self.overlapped |= bool(self.proposer and self.proposer.in_flight)
        self.in_flight -= 1
        attempt = Attempt(
            candidate, self.judge(candidate, len(self.attempts)), attempt_id=len(self.attempts) + 1
        )
        self.attempts.append(attempt)
        return attempt


def run(strategy, proposer, evaluate, budget, history=()):
    asyncio.run(strategy.run(PROBLEM, proposer, evaluate, budget, list(history)))


def stored(code: str, verdict: Verdict, **provenance) -> Attempt:
    return Attempt(Candidate(code, "scripted", provenance=provenance), verdict)


# -- refine -----------------------------------------------------------------------------------


def test_refine_feeds_each_proposal_the_chain_so_far():
    proposer, evaluate = Scripted(), Evaluator(lambda c, i: failed())
    budget = Budget(attempts=4)
    run(RefineStrategy(), proposer, evaluate, budget)
    assert proposer.histories == [[], ["# 1\n"], ["# 1\n", "# 2\n"], ["# 1\n", "# 2\n", "# 3\n"]]
    assert budget.used_attempts == 4 and len(evaluate.attempts) == 4
    assert evaluate.attempts[0].candidate.provenance == {"strategy": "refine", "chain": 0}


def test_refine_resumes_from_the_last_stored_attempt():
    history = [stored("# old 1\n", failed()), stored("# old 2\n", correct(1.2))]
    proposer = Scripted()
    run(RefineStrategy(), proposer, Evaluator(lambda c, i: failed()), Budget(attempts=1), history)
    assert proposer.histories == [["# old 1\n", "# old 2\n"]]


def test_target_speedup_stops_early():
    evaluate = Evaluator(lambda c, i: correct(1.0 + i))  # 1x, 2x, 3x, ...
    run(RefineStrategy(), Scripted(), evaluate, Budget(attempts=10, target_speedup=2.5))
    assert len(evaluate.attempts) == 3


def test_wall_budget_cancels_a_proposal_in_flight():
    proposer, evaluate = Scripted(delay=30), Evaluator(lambda c, i: failed())
    started = time.monotonic()
    run(RefineStrategy(), proposer, evaluate, Budget(seconds=0.3))
    assert time.monotonic() - started < 2
    assert proposer.cancelled == 1 and not evaluate.attempts


def test_a_spent_replay_ends_the_chain():
    evaluate = Evaluator(lambda c, i: failed())
    run(RefineStrategy(), ReplayProposer(["# a\n", "# b\n"]), evaluate, Budget(seconds=10))
    assert [a.candidate.code for a in evaluate.attempts] == ["# a\n", "# b\n"]


def test_proposer_error_is_raised_after_finished_work_is_kept():
    evaluate = Evaluator(lambda c, i: failed())
    with pytest.raises(ProposerError, match="endpoint gone"):
        run(RefineStrategy(), Scripted(fail_from=3), evaluate, Budget(attempts=10))
    assert len(evaluate.attempts) == 2


# -- parallel ---------------------------------------------------------------------------------


def test_parallel_overlaps_proposing_with_verifying_and_never_overshoots():
    proposer = Scripted(delay=lambda number: 0.02 * number)  # the chains drift apart
    evaluate = Evaluator(lambda c, i: correct(1.0 + i / 10), delay=0.05, proposer=proposer)
    budget = Budget(attempts=7)
    run(ParallelStrategy(chains=3), proposer, evaluate, budget)
    assert len(proposer.histories) == 7 and len(evaluate.attempts) == 7 and budget.used_attempts == 7
    assert evaluate.max_in_flight >= 2 and evaluate.overlapped
    chains = {a.candidate.provenance["chain"] for a in evaluate.attempts}
    assert chains == {0, 1, 2}
    # each chain only ever sees its own attempts
    for history in proposer.histories:
        owners = {
            next(a.candidate.provenance["chain"] for a in evaluate.attempts if a.candidate.code == code)
            for code in history
        }
        assert len(owners) <= 1


def test_parallel_resumes_each_chain_where_it_stopped():
    history = [
        stored("# c0\n", failed(), chain=0),
        stored("# c1\n", failed(), chain=1),
        stored("# c0b\n", failed(), chain=0),
    ]
    proposer = Scripted()
    run(ParallelStrategy(chains=2), proposer, Evaluator(lambda c, i: failed()), Budget(attempts=2), history)
    assert sorted(proposer.histories) == [["# c0\n", "# c0b\n"], ["# c1\n"]]


def test_parallel_target_cancels_the_other_chains_proposals():
    slow = Scripted(delay=0.3)
    evaluate = Evaluator(lambda c, i: correct(5.0), delay=0.0)
    started = time.monotonic()
    run(ParallelStrategy(chains=3), slow, evaluate, Budget(seconds=30, target_speedup=2.0))
    # all three first proposals finish together; the first verdict stops the run
    assert time.monotonic() - started < 2 and 1 <= len(evaluate.attempts) <= 3


def test_parallel_proposer_error_lets_verifications_in_flight_finish():
    proposer = Scripted(delay=0.01, fail_from=3)
    evaluate = Evaluator(lambda c, i: failed(), delay=0.2)
    with pytest.raises(ProposerError):
        run(ParallelStrategy(chains=2), proposer, evaluate, Budget(attempts=10))
    assert len(evaluate.attempts) == 2  # both first candidates were verified, none cancelled


# -- evolve -----------------------------------------------------------------------------------


def test_evolve_refines_until_something_is_correct_then_mutates_and_crosses():
    proposer = Crossing()
    # the first two attempts fail; everything after is correct and faster each time
    evaluate = Evaluator(lambda c, i: failed() if i < 2 else correct(1.0 + i))
    run(EvolveStrategy(workers=1, crossover=0.5, seed=3), proposer, evaluate, Budget(attempts=12))
    ops = [a.candidate.provenance["op"] for a in evaluate.attempts]
    assert ops[:3] == ["refine", "refine", "refine"]
    assert proposer.histories[1] == ["# 1\n"] and proposer.histories[2] == ["# 1\n", "# 2\n"]
    assert {"mutate", "crossover"} <= set(ops[3:]) and "refine" not in ops[3:]
    assert all(len(set(parents)) == 2 for parents in proposer.crossings)
    mutations = [h for h in proposer.histories[3:]]
    assert all(len(h) == 1 for h in mutations)  # a mutation is feedback on one correct parent


def test_evolve_repairs_a_failed_child_before_choosing_again():
    proposer = Scripted()
    verdicts = [correct(1.5), failed("typo"), failed("typo 2"), failed("typo 3")]
    evaluate = Evaluator(lambda c, i: verdicts[i] if i < len(verdicts) else correct(1.1))
    run(EvolveStrategy(workers=1, crossover=0.0, repairs=2, seed=0), proposer, evaluate, Budget(attempts=6))
    ops = [a.candidate.provenance["op"] for a in evaluate.attempts]
    assert ops == ["refine", "mutate", "repair", "repair", "mutate", "mutate"]
    assert proposer.histories[2] == ["# 1\n", "# 2\n"]  # repair: feedback on the failed child


def test_evolve_without_crossover_support_only_mutates():
    evaluate = Evaluator(lambda c, i: correct(1.0 + i))
    run(EvolveStrategy(workers=2, crossover=1.0, seed=1), Scripted(), evaluate, Budget(attempts=8))
    assert "crossover" not in {a.candidate.provenance["op"] for a in evaluate.attempts}


def test_population_keeps_the_best_distinct_correct():
    attempts = [stored(f"# {i}\n", correct(s)) for i, s in enumerate([1.0, 3.0, 2.0, 0.5])]
    attempts += [stored("# 1\n", correct(3.0)), stored("# bad\n", failed())]
    pool = Population(3, attempts)
    assert [a.candidate.code for a in pool.members] == ["# 1\n", "# 2\n", "# 0\n"]
    assert best_attempt(attempts).candidate.code == "# 1\n"
    suspect = stored("# s\n", Verdict("correct", time_ms=0.01, speedup={"eager": 100.0}, suspect=True))
    assert best_attempt(attempts + [suspect]).candidate.code == "# 1\n"


# -- registry ---------------------------------------------------------------------------------


def test_make_strategy():
    assert {"refine", "parallel", "evolve", "compiler"} <= set(strategy_names())
    assert isinstance(make_strategy("refine", workers=None), RefineStrategy)
    assert make_strategy("parallel", chains=2).chains == 2
    assert make_strategy("parallel", chains=None).chains == 4
    evolve = make_strategy("evolve", workers=3, population=5)
    assert (evolve.workers, evolve.population) == (3, 5)
    with pytest.raises(ValueError, match="unknown strategy 'beam'.*refine"):
        make_strategy("beam")
    compiler = make_strategy("compiler", workers=2)  # resolved lazily by import path
    assert compiler.name == "compiler" and compiler.workers == 2


def test_unknown_strategy_options_are_errors_not_dropped():
    with pytest.raises(ValueError, match="refine takes no option chains"):
        make_strategy("refine", chains=4)
    with pytest.raises(ValueError, match="parallel takes no option population"):
        make_strategy("parallel", population=8)


def test_strategies_get_the_real_worker_count():
    from kernelscale.search.strategies import default_options

    assert make_strategy("parallel", **default_options("parallel", 8)).chains == 8
    assert make_strategy("compiler", **default_options("compiler", 3)).workers == 3
    assert make_strategy("evolve", **default_options("evolve", 6)).workers == 6
    assert make_strategy("refine", **default_options("refine", 8)).name == "refine"
