"""`solve`: one problem, one run, through a `Session`; writes best_kernel.py and summary.json.

A command that fails before its first attempt (bad proposer for the problem, a refused endpoint,
a variant the compiler cannot trace) leaves no run behind: there is nothing to resume. Ctrl-C
keeps every verdict and still writes the outputs for what was verified.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from kernelscale.problems import Problem, load_problem
from kernelscale.propose.base import Attempt, ProposerError
from kernelscale.propose.best import best_attempt, improvements
from kernelscale.search.evaluator import VerifierFailure
from kernelscale.search.interrupt import run_to_end
from kernelscale.search.session import SearchOutcome, Session, SolveError, make_proposer  # noqa: F401
from kernelscale.search.settings import DEFAULT_DB, RunSettings  # noqa: F401


@dataclass
class SolveResult:
    run_id: int
    problem: Problem
    best: Attempt | None
    attempts: list[Attempt] = field(default_factory=list)
    out_dir: Path | None = None
    stopped: str = "budget"  # budget | attempts | target | exhausted | stuck | interrupted | error
    detail: str = ""  # one line on the stop: which limit, which error
    shape: dict = field(default_factory=dict)
    first_verdict_s: float | None = None  # from the command's start (pool start included)
    verifier_failed: bool = False  # the search ended on the verifier's own failure (its typed mark)


@dataclass
class _Started:
    """What a solve had set up when it was interrupted (for the outputs Ctrl-C still writes)."""

    run_id: int | None = None
    problem: Problem | None = None
    new_run: bool = True
    started: float = field(default_factory=time.monotonic)


def solve(
    problem: Problem | str | None = None,
    settings: RunSettings | None = None,
    *,
    resume: int | None = None,
    progress=None,
    **fields,
) -> SolveResult:
    """Search for the fastest verified kernel for one problem. Pass a RunSettings, or its fields
    as keywords (`budget_s=60, device="cpu", proposer=...`); `resume` continues a stored run."""
    if settings is not None and fields:
        raise TypeError(f"pass RunSettings or its fields ({sorted(fields)}), not both")
    settings = settings or RunSettings(**fields)
    session = Session(settings, progress)
    started = _Started()
    loop = asyncio.new_event_loop()
    try:
        return run_to_end(loop, _solve(session, started, problem, resume))
    except KeyboardInterrupt:
        if started.run_id is None:
            raise
        return _interrupted(session, started)
    finally:
        loop.close()
        session.close_store()


async def _solve(session: Session, started: _Started, problem, resume: int | None) -> SolveResult:
    store, settings = session.store, session.settings
    if resume is not None:
        problem, history, spent, budget_s = _resumed(store, resume, settings)
    else:
        problem = _load(problem, settings.tolerance)
        history, spent, budget_s = [], 0.0, settings.budget_s
    session.prepare_pool()  # refuses missing GPUs before anything is recorded
    proposer = session.proposer_for(problem)
    session.make_strategy(proposer)  # refuses unknown strategy options, likewise
    await session.start()
    try:
        run_id = resume if resume is not None else _new_run(store, problem, settings)
        started.run_id, started.problem, started.new_run = run_id, problem, resume is None
        shape = problem.sizes_for(session.pool.device)
        if session.progress:
            session.progress(
                "start",
                {
                    "run_id": run_id,
                    "problem": problem.name,
                    "device": session.pool.device_key,
                    "workers": session.pool.size,
                    "proposer": proposer.name,
                    "proposer_note": getattr(proposer, "note", ""),
                    "shape": shape,
                    "budget_s": budget_s,
                    "resumed_at": len(history),
                },
            )
        outcome = await session.search(problem, run_id, proposer, history, spent, budget_s)
    except BaseException:
        _discard_if_empty(store, started)
        raise
    finally:
        await session.close()
    return _finish(session, started, outcome, shape)


def _finish(session: Session, started: _Started, outcome: SearchOutcome, shape: dict) -> SolveResult:
    store, run_id, problem = session.store, started.run_id, started.problem
    if outcome.stopped == "error" and _discard_if_empty(store, started):
        raise (VerifierFailure if outcome.verifier_failed else ProposerError)(outcome.detail)
    failed = outcome.stopped == "error"
    store.finish_run(run_id, "error" if failed else "finished")
    store.set_problem_status(run_id, problem.content_hash(), "error" if failed else "done", outcome.elapsed_s)
    first = None if outcome.first_verdict_s is None else session.startup_s + outcome.first_verdict_s
    result = SolveResult(
        run_id,
        problem,
        outcome.best,
        outcome.everything,
        stopped=outcome.stopped,
        detail=outcome.detail,
        shape=shape,
        first_verdict_s=first,
        verifier_failed=outcome.verifier_failed,
    )
    result.out_dir = _write(result, _out_dir(session.settings, run_id))
    return result


def _interrupted(session: Session, started: _Started) -> SolveResult:
    """Ctrl-C: the run is kept as interrupted (resumable) and the outputs describe what was verified."""
    store, run_id, problem = session.store, started.run_id, started.problem
    store.finish_run(run_id, "interrupted")
    store.set_problem_status(run_id, problem.content_hash(), "interrupted")
    attempts = store.attempts(run_id, problem.content_hash())
    result = SolveResult(
        run_id,
        problem,
        best_attempt(attempts),
        attempts,
        stopped="interrupted",
        detail="interrupted (Ctrl-C)",
    )
    result.out_dir = _write(result, _out_dir(session.settings, run_id))
    return result


def _discard_if_empty(store, started: _Started) -> bool:
    """Forget a new run that has no attempt: a failure before the first verdict leaves nothing."""
    if started.run_id is None or not started.new_run or store.attempts(started.run_id):
        return False
    store.discard_run(started.run_id)
    started.run_id = None
    return True


def _load(problem, tolerance: str | None) -> Problem:
    if problem is None:
        raise SolveError("give a problem, or resume a run")
    if not isinstance(problem, Problem):
        return load_problem(problem, tolerance=tolerance)
    return problem.with_options(tolerance=tolerance) if tolerance else problem


def _new_run(store, problem: Problem, settings: RunSettings) -> int:
    run_id = store.create_run("solve", problem.name, settings.recorded() | {"tolerance": problem.tolerance})
    store.add_problem(run_id, problem)
    return run_id


def _resumed(store, run_id: int, settings: RunSettings):
    """(problem, attempts so far, seconds spent so far, budget) of a stored solve run."""
    record = store.get_run(run_id)
    rows = store.run_problems(run_id)
    if record.command != "solve" or len(rows) != 1:
        raise SolveError(
            f"run {run_id} is a {record.command} run; resume it with `kernelscale {record.command}`"
        )
    row = rows[0]
    budget_s = record.options.get("budget_s") if settings.keep_run_budget else settings.budget_s
    store.reopen_run(run_id)
    return (
        row.problem,
        store.attempts(run_id, row.problem_hash),
        row.seconds_spent,
        budget_s,
    )


def _write(result: SolveResult, folder: Path) -> Path:
    try:
        return write_outputs(result, folder)
    except OSError as exc:  # the run is stored whole; only the copy on disk failed (a full disk)
        raise SolveError(
            f"run {result.run_id} is stored, but its outputs could not be written to {folder} "
            f"({exc.strerror or exc}): `kernelscale report {result.run_id} --out DIR` writes them"
        ) from None


def _out_dir(settings: RunSettings, run_id: int) -> Path:
    return settings.out_dir or Path("runs") / f"run-{run_id}"


def write_outputs(result: SolveResult, out_dir: Path) -> Path:
    """`best_kernel.py` (the best verified module, as verified) and `summary.json`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    best = result.best
    if best is not None:
        (out_dir / "best_kernel.py").write_text(best.candidate.code)
    summary = {
        "run_id": result.run_id,
        "problem": result.problem.name,
        "shape": result.shape,
        "stopped": result.stopped,
        "stop_detail": result.detail,
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
        "first_verdict_s": result.first_verdict_s,
        "first_correct_s": next((a.elapsed_s for a in result.attempts if a.verdict.ok), None),
        "llm": llm_spend(result.attempts),
        "best_speedup_over_time": speedup_curve(result.attempts),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return out_dir


def llm_spend(attempts: list[Attempt]) -> dict | None:
    """Requests and tokens the proposer spent over the run (None when no attempt used an LLM)."""
    usages = [a.candidate.usage for a in attempts if a.candidate.usage]
    if not usages:
        return None
    return {
        "calls": sum(int(u.get("calls", 1)) for u in usages),
        "tokens": sum(int(u.get("total_tokens") or 0) for u in usages),
        "cost_usd": round(sum(float(u.get("cost_usd") or 0.0) for u in usages), 6),
    }


def speedup_curve(attempts: list[Attempt]) -> list[tuple[float, float]]:
    """(elapsed s, speedup over the strongest baseline) each time the best improved."""
    return [
        (round(a.elapsed_s, 2), round(a.best_speedup, 4)) for a in improvements(attempts) if a.best_speedup
    ]
