"""A whole suite through one Session: one verifier pool, one run record, a search per problem.

`bench_spread` (search.spread) keeps the per-problem bookkeeping, with as many problems in
flight as the pool has workers; this module gives it a solver that searches through the session, so a suite's problems are timed, stopped and recorded exactly as
`solve` does it. This is also the Python API's `kernelscale.bench`.
"""

from __future__ import annotations

import asyncio

from kernelscale.propose.base import ProposerError
from kernelscale.search.bench import BenchResult
from kernelscale.search.interrupt import run_to_end
from kernelscale.search.session import Session
from kernelscale.search.settings import RunSettings
from kernelscale.search.spread import bench_spread


class ProblemFailed(RuntimeError):
    """One problem's search ended in an error that does not concern the others (its verifier)."""


def _start_event(session: Session, run_id: int, problem, proposer, budget_s: float, history) -> dict:
    """What the progress display shows when a problem's search begins."""
    return {
        "run_id": run_id,
        "problem": problem.name,
        "device": session.pool.device_key,
        "workers": session.pool.size,
        "proposer": proposer.name,
        "proposer_note": getattr(proposer, "note", ""),
        "shape": problem.sizes_for(session.pool.device),
        "budget_s": budget_s,
        "resumed_at": len(history),
    }


def bench_suite(
    suite_or_dir,
    settings: RunSettings | None = None,
    *,
    resume: int | None = None,
    progress=None,
    on_event=None,
    **fields,
) -> BenchResult:
    """Solve every problem of `suite_or_dir` ("ops", "attention" or a directory of problem
    files) with `settings.budget_s` per problem; `resume` continues a stored bench run."""
    if settings is not None and fields:
        raise TypeError(f"pass RunSettings or its fields ({sorted(fields)}), not both")
    settings = settings or RunSettings(**fields)
    session = Session(settings, progress)
    loop = asyncio.new_event_loop()
    try:
        session.prepare_pool()  # missing GPUs are refused before a run is recorded
        loop.run_until_complete(session.start())

        workers = session.pool.size

        async def solve_one(problem, run_id: int, budget_s: float) -> None:
            key = problem.content_hash()
            row = next(r for r in session.store.run_problems(run_id) if r.problem_hash == key)
            spent = row.seconds_spent  # the clock continues where it stopped
            history = session.store.attempts(run_id, key)
            proposer = session.proposer_for(problem)
            if progress:
                progress("start", _start_event(session, run_id, problem, proposer, spent + budget_s, history))
            # Problems run side by side, one per worker, so each search gets one worker's share.
            outcome = await session.search(
                problem,
                run_id,
                proposer,
                history,
                spent,
                spent + budget_s,
                workers=1 if workers > 1 else None,
            )
            if outcome.stopped == "error":
                # A proposer that cannot go on would fail every later problem too: stop the bench.
                if outcome.verifier_failed:
                    raise ProblemFailed(outcome.detail)
                raise ProposerError(outcome.detail)

        per_problem = None if (settings.keep_run_budget and resume is not None) else settings.budget_s
        options = settings.recorded() | {"device_key": session.pool.device_key, "workers": workers}
        return run_to_end(
            loop,
            bench_spread(
                suite_or_dir,
                solve_fn=solve_one,
                store=session.store,
                concurrency=workers,
                per_problem_budget_s=per_problem,
                resume=resume,
                tolerance=settings.tolerance,
                options=options,
                on_event=on_event,
            ),
        )
    finally:
        loop.run_until_complete(session.close())
        loop.close()
        session.close_store()
