"""The one owner of a run: its settings, store, verifier pool, proposers, strategy and clock.

`solve`, `bench` and the Python API all go through a `Session`, so a run is started, timed,
stopped and recorded the same way whichever command made it:

* everything that can be refused (settings, GPUs, proposer for the problem) is checked before a
  run is recorded, so a bad command leaves nothing behind;
* each problem's search has its own budget clock, started when the pool is ready, and a resumed
  search continues the clock and the attempt count where they stopped (`seconds_spent` in the
  store is cumulative);
* every search ends with one stop reason of `STOP_REASONS`, and a verifier-side failure or a
  proposer that cannot go on ends it at once as `error`.

The verifier pool comes from one factory, `make_executor(settings)`, so another executor (a
cluster of machines) can stand in for the local pool: it needs `device`, `device_key`, `size`,
`start()`, `close()` and `verify(problem, code, options)`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from kernelscale.problems import Problem
from kernelscale.propose.base import Attempt, Proposer, ProposerError, ProposerStopped
from kernelscale.propose.best import best_attempt
from kernelscale.search.base import Budget
from kernelscale.search.evaluator import Evaluator, Progress, VerifierFailure
from kernelscale.search.settings import RunSettings, SettingsError
from kernelscale.search.strategies import default_options, make_strategy
from kernelscale.store.db import Store
from kernelscale.verify.options import VerifyOptions


class SolveError(ValueError):
    """A run that cannot start (wrong proposer for the problem, unknown run); one line for users."""


def make_executor(settings: RunSettings):
    """The verifier pool for these settings (local workers or Ray actors); raises ValueError for
    GPUs that are not there."""
    from kernelscale.search.executor import make_executor as build

    return build(
        settings.executor, settings.gpus, settings.address, device=settings.device, workers=settings.workers
    )


@dataclass
class SearchOutcome:
    """How one problem's search ended."""

    attempts: list[Attempt]  # made by this call
    history: list[Attempt]  # made before it (a resumed run)
    stopped: str  # one of settings.STOP_REASONS
    detail: str = ""  # one line: which limit, which error
    first_verdict_s: float | None = None  # seconds from this search's start to its first verdict
    elapsed_s: float = 0.0  # the problem's clock at the end, earlier sessions included
    verifier_failed: bool = False  # stopped by the verifier's own failure (its typed mark), not a proposer's

    @property
    def everything(self) -> list[Attempt]:
        return self.history + self.attempts

    @property
    def best(self) -> Attempt | None:
        return best_attempt(self.everything)


@dataclass
class Session:
    settings: RunSettings
    progress: Progress | None = None
    executor_factory: Callable[[RunSettings], object] = make_executor
    store: Store = field(init=False)
    pool: object = field(init=False, default=None)
    startup_s: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.settings.check()
        if self.settings.out_dir is not None:
            check_out_dir(self.settings.out_dir)
        self.store = Store(self.settings.db_path)

    def prepare_pool(self):
        """Build (not start) the pool: bad or missing GPUs are refused before anything is recorded."""
        if self.pool is None:
            self.pool = self.executor_factory(self.settings)
        return self.pool

    async def start(self) -> Session:
        started = time.monotonic()
        await self.prepare_pool().start()
        self.startup_s = time.monotonic() - started
        return self

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    def close_store(self) -> None:
        self.store.close()

    def proposer_for(self, problem: Problem) -> Proposer:
        chosen = self.settings.proposer
        if not isinstance(chosen, str):
            return chosen
        return make_proposer(chosen, problem, self.prepare_pool().device, self.settings)

    def strategy_name(self, proposer: Proposer) -> str:
        return self.settings.strategy or ("compiler" if proposer.name == "compiler" else "refine")

    def make_strategy(self, proposer: Proposer, workers: int | None = None):
        name = self.strategy_name(proposer)
        options = default_options(name, workers or self.prepare_pool().size) | self.settings.strategy_options
        return make_strategy(name, **options)

    def verify_options(self, problem: Problem) -> VerifyOptions:
        options = self.settings.verify_options or VerifyOptions()
        known, calibrations = _stored_measurements(
            self.store, problem, self.pool, self.settings.fresh_baselines
        )
        return replace(options, known_baselines=known or None, known_calibrations=calibrations or None)

    async def search(
        self,
        problem: Problem,
        run_id: int,
        proposer: Proposer,
        history: list[Attempt],
        spent_s: float = 0.0,
        budget_s: float | None = ...,
        workers: int | None = None,
    ) -> SearchOutcome:
        """Run one problem's search until it stops; attempts are stored as they finish and the
        problem's cumulative seconds are stored however it ends (Ctrl-C included)."""
        settings = self.settings
        budget = Budget(
            settings.budget_s if budget_s is ... else budget_s,
            settings.max_attempts,
            settings.target_speedup,
            used_attempts=len(history),
            spent_before=spent_s,
        )
        options = self.verify_options(problem)
        evaluate = Evaluator(self.store, self.pool, run_id, problem, options, budget, self.progress, history)
        strategy = self.make_strategy(
            proposer, workers
        )  # a bench running problems side by side gives a share
        stopped, detail, failure = None, "", None
        try:
            await strategy.run(problem, proposer, evaluate, budget, list(history))
        except ProposerStopped as exc:
            stopped, detail = exc.reason, str(exc)
        except (ProposerError, VerifierFailure) as exc:
            stopped, detail, failure = "error", str(exc), exc
        finally:
            self.store.set_problem_status(run_id, problem.content_hash(), "running", budget.elapsed())
        outcome = SearchOutcome(
            evaluate.attempts, list(history), "", detail, evaluate.first_verdict_s, budget.elapsed()
        )
        outcome.verifier_failed = isinstance(failure, VerifierFailure)
        outcome.stopped = stopped or why_stopped(budget, outcome.best)
        return outcome


def _stored_measurements(
    store: Store, problem: Problem, pool, fresh: bool
) -> tuple[dict[str, float], list[dict]]:
    """What earlier runs measured for this problem on this device and these versions (the device
    key names both): baseline times, and the verifier's calibration per host. `fresh` forgets
    both so this run measures them again."""
    if pool.device != "cuda":
        return {}, []  # interpreted runs claim no speedup: nothing worth reusing
    key = (problem.content_hash(), pool.device_key)
    if fresh:
        store.forget_baselines(*key)
        store.forget_calibrations(*key)
    return store.baselines(*key), store.calibrations(*key)


def check_out_dir(folder: Path) -> None:
    """The outputs' folder is made and tried now: a run that cannot write its results learns it
    before it spends anything, not after its budget."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".kernelscale-write-check-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise SettingsError(f"cannot write the outputs to {folder}: {exc.strerror or exc}") from None


def why_stopped(budget: Budget, best: Attempt | None) -> str:
    """The reason a strategy returned by itself: a limit it reached, or nothing left to propose."""
    if budget.target_speedup and best is not None and (best.best_speedup or 0) >= budget.target_speedup:
        return "target"
    if budget.attempts is not None and budget.used_attempts >= budget.attempts:
        return "attempts"
    if budget.seconds is not None and budget.elapsed() >= budget.seconds:
        return "budget"
    return "exhausted"


def make_proposer(name: str, problem: Problem, device: str, settings: RunSettings | None = None) -> Proposer:
    settings = settings or RunSettings()
    if name == "compiler":
        if problem.kind != "attention":
            raise SolveError(
                f"the compiler proposer handles attention problems; {problem.name} needs --proposer llm"
            )
        from kernelscale.propose.compiler import CompilerProposer

        try:
            return CompilerProposer(device=device, backends=settings.backends)
        except ProposerError as exc:
            raise SolveError(str(exc)) from None
    if name == "llm":
        from kernelscale.propose.llm import make_llm_proposer
        from kernelscale.propose.llm.spend import SpendLimits

        language = settings.language
        start = (
            _compiler_kernel(problem, device)
            if problem.kind == "attention" and language == "triton"
            else None
        )
        spend = SpendLimits(max_calls=settings.max_calls, max_tokens_total=settings.max_tokens_total)
        return make_llm_proposer(
            settings.llm, device=device, language=language, start_kernel=start, spend=spend
        )
    if name == "replay":
        raise SolveError("the replay proposer takes files: use the Python API with a ReplayProposer")
    raise SolveError(f"unknown proposer {name!r} (compiler, llm)")


def _compiler_kernel(problem: Problem, device: str) -> str | None:
    """The attention compiler's first kernel: the LLM starts from a correct, fast kernel instead
    of a blank page (None when the compiler cannot express the variant)."""
    from kernelscale.propose.compiler.proposer import CompilerProposer

    return CompilerProposer(device=device).first_kernel(problem)
