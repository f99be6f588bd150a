"""The loop: a strategy asks a proposer, the pool verifies, the store keeps everything.

`solve_problem_async` is the per-problem core (bench calls it for every problem of a suite);
`solve` wraps it with the store, the pool, a run record and the output folder.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kernelscale.problems import Problem, load_problem
from kernelscale.propose.base import Attempt, Candidate, Proposer, ProposerError, no_code_verdict
from kernelscale.search.base import Budget
from kernelscale.search.refine import best_attempt
from kernelscale.search.strategies import make_strategy
from kernelscale.store.db import Store
from kernelscale.verify.options import VerifyOptions
from kernelscale.verify.pool import VerifierPool
from kernelscale.verify.verdict import Verdict

DEFAULT_DB = Path("kernelscale.db")
Progress = Callable[[str, dict], None]


class SolveError(ValueError):
    """A solve that cannot start (wrong proposer for the problem, unknown run); one line for users."""


@dataclass
class SolveResult:
    run_id: int
    problem: Problem
    best: Attempt | None
    attempts: list[Attempt] = field(default_factory=list)
    out_dir: Path | None = None
    stopped: str = "budget"  # budget | target | attempts | proposer error: ... | interrupted


def make_proposer(name: str, problem: Problem, device: str, llm=None, language: str = "triton") -> Proposer:
    if name == "compiler":
        if problem.kind != "attention":
            raise SolveError(
                f"the compiler proposer handles attention problems; {problem.name} needs --proposer llm"
            )
        from kernelscale.propose.compiler import CompilerProposer

        return CompilerProposer(device=device)
    if name == "llm":
        from kernelscale.propose.llm import make_llm_proposer

        if language not in ("triton", "cuda"):
            raise SolveError(f"--language must be triton or cuda, not {language!r}")
        start = (
            _compiler_kernel(problem, device)
            if problem.kind == "attention" and language == "triton"
            else None
        )
        return make_llm_proposer(llm, device=device, language=language, start_kernel=start)
    if name == "replay":
        raise SolveError("the replay proposer takes files: use the Python API with a ReplayProposer")
    raise SolveError(f"unknown proposer {name!r} (compiler, llm)")


def _compiler_kernel(problem: Problem, device: str) -> str | None:
    """The attention compiler's first kernel: the LLM starts from a correct, fast kernel instead
    of a blank page (None when the compiler cannot express the variant)."""
    from kernelscale.propose.compiler.proposer import CompilerProposer

    return CompilerProposer(device=device).first_kernel(problem)


def default_strategy(proposer: Proposer) -> str:
    return "compiler" if proposer.name == "compiler" else "refine"


class Evaluator:
    """Verifies a candidate once per (code, problem, device), re-verifies suspects, stores all."""

    def __init__(
        self,
        store: Store,
        pool: VerifierPool,
        run_id: int,
        problem: Problem,
        options: VerifyOptions,
        budget: Budget,
        progress: Progress | None,
    ):
        self.store, self.pool, self.run_id, self.problem = store, pool, run_id, problem
        self.options, self.budget, self.progress = options, budget, progress
        self.problem_hash = problem.content_hash()
        self.attempts: list[Attempt] = []

    async def __call__(self, candidate: Candidate) -> Attempt:
        verdict, verdict_id = await self._verdict(candidate)
        attempt = Attempt(candidate=candidate, verdict=verdict, elapsed_s=self.budget.elapsed())
        attempt.attempt_id = self.store.add_attempt(self.run_id, self.problem_hash, attempt, verdict_id)
        self.attempts.append(attempt)
        if self.progress:
            self.progress(
                "attempt",
                {
                    "attempt": attempt,
                    "best": best_attempt(self.attempts),
                    "n": len(self.attempts),
                    "problem": self.problem.name,
                },
            )
        return attempt

    async def _verdict(self, candidate: Candidate) -> tuple[Verdict, int]:
        key = (candidate.code_hash, self.problem_hash, self.pool.device_key)
        cached = self.store.cached_verdict(*key)
        if cached is not None:
            verdict_id, verdict = cached
            verdict.cached = True
            return verdict, verdict_id
        verdict = no_code_verdict(candidate) or await self.pool.verify(
            self.problem, candidate.code, self.options
        )
        if verdict.suspect:
            verdict = await self._reverify(candidate, verdict)
        return verdict, self.store.add_verdict(*key, verdict)

    async def _reverify(self, candidate: Candidate, first: Verdict) -> Verdict:
        """A suspect result counts only if a fresh verification agrees; a time under the roofline
        floor never counts, however often it repeats."""
        second = await self.pool.verify(self.problem, candidate.code, self.options)
        agrees = second.ok and second.time_ms and abs(second.time_ms - first.time_ms) <= 0.3 * first.time_ms
        if agrees and "roofline" not in first.suspect_reason + second.suspect_reason:
            first.suspect = False
            first.suspect_reason += f" (re-verified: {second.time_ms:.4f} ms on fresh inputs)"
        else:
            first.suspect_reason += f" (re-verification: {second.headline()})"
        return first


async def solve_problem_async(
    problem: Problem,
    *,
    store: Store,
    pool: VerifierPool,
    run_id: int,
    proposer: Proposer,
    strategy: str | None = None,
    budget: Budget,
    options: VerifyOptions | None = None,
    progress: Progress | None = None,
    history: list[Attempt] | None = None,
) -> tuple[list[Attempt], str]:
    """Run one problem's search; every attempt is stored as it finishes. Returns (attempts, why stopped)."""
    evaluate = Evaluator(store, pool, run_id, problem, options or VerifyOptions(), budget, progress)
    name = strategy or default_strategy(proposer)
    # LLM strategies keep more requests in flight than there are GPUs, so verifying never waits
    # on a model that is still thinking; the compiler proposes instantly.
    chosen = make_strategy(name, workers=pool.size if name == "compiler" else max(4, pool.size))
    stopped = "budget"
    try:
        await chosen.run(problem, proposer, evaluate, budget, list(history or []))
    except ProposerError as exc:
        stopped = f"proposer error: {exc}"
    best = best_attempt(list(history or []) + evaluate.attempts)
    if budget.target_speedup and best and (best.best_speedup or 0) >= budget.target_speedup:
        stopped = "target"
    elif budget.attempts is not None and budget.used_attempts >= budget.attempts and stopped == "budget":
        stopped = "attempts"
    return evaluate.attempts, stopped


def solve(
    problem: Problem | str,
    *,
    proposer: str | Proposer = "compiler",
    strategy: str | None = None,
    budget_s: float | None = 900.0,
    max_attempts: int | None = None,
    target_speedup: float | None = None,
    device: str | None = None,
    gpus: str | None = None,
    out_dir: str | Path | None = None,
    db_path: str | Path = DEFAULT_DB,
    resume: int | None = None,
    llm=None,
    verify_options: VerifyOptions | None = None,
    progress: Progress | None = None,
    tolerance: str | None = None,
    language: str = "triton",
) -> SolveResult:
    """Search for the fastest verified kernel for one problem within the budget."""
    store = Store(db_path)
    try:
        problem, history, run_id = _prepare_run(
            store, problem, resume, tolerance, proposer, strategy, budget_s
        )
        return asyncio.run(
            _solve_async(
                problem,
                store,
                run_id,
                history,
                proposer,
                strategy,
                Budget(budget_s, max_attempts, target_speedup),
                device,
                gpus,
                out_dir,
                (llm, language),
                verify_options,
                progress,
            )
        )
    finally:
        store.close()


def _prepare_run(store: Store, problem, resume, tolerance, proposer, strategy, budget_s):
    if resume is not None:
        record = store.get_run(resume)
        rows = store.run_problems(resume)
        if record.command != "solve" or len(rows) != 1:
            raise SolveError(
                f"run {resume} is a {record.command} run; resume it with `kernelscale {record.command}`"
            )
        problem = rows[0]["problem"]
        store.reopen_run(resume)
        return problem, store.attempts(resume, rows[0]["problem_hash"]), resume
    if not isinstance(problem, Problem):
        problem = load_problem(problem, tolerance=tolerance)
    elif tolerance:
        problem = problem.with_options(tolerance=tolerance)
    options = {
        "proposer": getattr(proposer, "name", proposer),
        "strategy": strategy,
        "budget_s": budget_s,
        "tolerance": problem.tolerance,
    }
    run_id = store.create_run("solve", problem.name, options)
    store.add_problem(run_id, problem)
    return problem, [], run_id


async def _solve_async(
    problem,
    store,
    run_id,
    history,
    proposer,
    strategy,
    budget,
    device,
    gpus,
    out_dir,
    llm,
    verify_options,
    progress,
) -> SolveResult:
    async with VerifierPool(device=device, gpus=gpus) as pool:
        chosen = (
            proposer if not isinstance(proposer, str) else make_proposer(proposer, problem, pool.device, *llm)
        )
        if progress:
            progress(
                "start",
                {
                    "run_id": run_id,
                    "problem": problem.name,
                    "device": pool.device_key,
                    "workers": pool.size,
                    "proposer": chosen.name,
                },
            )
        status = "interrupted"
        attempts: list[Attempt] = []
        try:
            attempts, stopped = await solve_problem_async(
                problem,
                store=store,
                pool=pool,
                run_id=run_id,
                proposer=chosen,
                strategy=strategy,
                budget=budget,
                options=verify_options,
                progress=progress,
                history=history,
            )
            status = "finished" if not stopped.startswith("proposer error") else "error"
        finally:
            store.finish_run(run_id, status)
            store.set_problem_status(
                run_id, problem.content_hash(), "done" if status == "finished" else status, budget.elapsed()
            )
    everything = history + attempts
    result = SolveResult(run_id, problem, best_attempt(everything), everything, stopped=stopped)
    result.out_dir = write_outputs(result, Path(out_dir) if out_dir else Path("runs") / f"run-{run_id}")
    return result


def write_outputs(result: SolveResult, out_dir: Path) -> Path:
    """`best_kernel.py` (the fastest verified module, as verified) and `summary.json`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    best = result.best
    if best is not None:
        (out_dir / "best_kernel.py").write_text(best.candidate.code)
    curve = speedup_curve(result.attempts)
    summary = {
        "run_id": result.run_id,
        "problem": result.problem.name,
        "stopped": result.stopped,
        "attempts": len(result.attempts),
        "correct": sum(a.verdict.ok for a in result.attempts),
        "best": None
        if best is None
        else {
            "attempt_id": best.attempt_id,
            "time_ms": best.verdict.time_ms,
            "baselines": best.verdict.baselines,
            "speedup": best.verdict.speedup,
            "interpreted": best.verdict.interpreted,
            "suspect": best.verdict.suspect,
            "config": best.candidate.provenance.get("config"),
            "proposer": best.candidate.proposer,
            "device": best.verdict.device,
            "elapsed_s": best.elapsed_s,
        },
        "first_correct_s": next((a.elapsed_s for a in result.attempts if a.verdict.ok), None),
        "best_speedup_over_time": curve,
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return out_dir


def speedup_curve(attempts: list[Attempt]) -> list[tuple[float, float]]:
    """(elapsed s, best speedup so far over the strongest baseline) at each improvement."""
    curve, best = [], 0.0
    for attempt in sorted(attempts, key=lambda a: a.elapsed_s):
        speedup = attempt.best_speedup
        if speedup and not attempt.verdict.suspect and speedup > best:
            best = speedup
            curve.append((round(attempt.elapsed_s, 2), round(best, 4)))
    return curve
