"""A bench whose problems run side by side, spread over the verifier's workers.

Same bookkeeping as `kernelscale.search.bench` (one run record, statuses per problem, seconds
spent, resumable), but `concurrency` problems are searched at once on one event loop, each with
its share of the workers: with 8 GPUs and a per-problem budget of 15 minutes, eight problems
finish every 15 minutes instead of one. The order in which problems start is the suite's order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from kernelscale.problems.problem import Problem
from kernelscale.propose.base import ProposerError
from kernelscale.search.bench import (
    DONE,
    ERROR,
    INTERRUPTED,
    RUNNING,
    BenchResult,
    EventFn,
    _new_run,
    _one_line,
    _resumed_run,
)
from kernelscale.store.db import Store

AsyncSolveFn = Callable[[Problem, int, float], Awaitable[None]]


async def bench_spread(
    suite_or_dir,
    *,
    solve_fn: AsyncSolveFn,
    store: Store,
    concurrency: int,
    per_problem_budget_s: float | None = None,
    resume: int | None = None,
    tolerance: str | None = None,
    options: dict | None = None,
    on_event: EventFn | None = None,
    fatal: tuple[type[BaseException], ...] = (ProposerError,),
) -> BenchResult:
    """`bench` with up to `concurrency` problems in flight (see `kernelscale.search.bench.bench`)."""
    if resume is None:
        run_id, budget = _new_run(store, suite_or_dir, per_problem_budget_s, tolerance, options or {})
    else:
        run_id, budget = _resumed_run(store, resume, suite_or_dir, per_problem_budget_s, tolerance)
    result = BenchResult(run_id, "incomplete")
    emit = on_event or (lambda kind, info: None)
    rows = store.run_problems(run_id)
    slots = asyncio.Semaphore(max(1, concurrency))
    runs = []
    for index, row in enumerate(rows):
        info = {"run_id": run_id, "problem": row["name"], "index": index, "total": len(rows)}
        if row["status"] == DONE:
            result.skipped.append(row["name"])
            emit("skip", info)
            continue
        runs.append(_one_problem(store, run_id, budget, row, info, solve_fn, result, emit, slots, fatal))
    try:
        await _gather_or_stop(runs)
    except (asyncio.CancelledError, KeyboardInterrupt, *fatal) as exc:
        store.finish_run(run_id, ERROR if isinstance(exc, fatal) else INTERRUPTED)
        raise
    statuses = [r["status"] for r in store.run_problems(run_id)]
    result.status = DONE if all(s == DONE for s in statuses) else "incomplete"
    store.finish_run(run_id, result.status)
    return result


async def _gather_or_stop(runs) -> None:
    """Run all; the first fatal error cancels the rest (they record what they spent) and is raised."""
    tasks = [asyncio.ensure_future(r) for r in runs]
    try:
        for finished in asyncio.as_completed(tasks):
            await finished
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _one_problem(
    store: Store,
    run_id: int,
    budget: float,
    row: dict,
    info: dict,
    solve_fn: AsyncSolveFn,
    result: BenchResult,
    emit: EventFn,
    slots: asyncio.Semaphore,
    fatal: tuple,
) -> None:
    async with slots:
        key, name = row["problem_hash"], row["name"]
        spent = float(row["seconds_spent"] or 0.0)
        remaining = budget - spent
        if remaining <= 0:  # interrupted after its whole budget was used: nothing left to try
            store.set_problem_status(run_id, key, DONE)
            result.solved_now.append(name)
            emit("done", info | {"seconds": spent})
            return
        store.set_problem_status(run_id, key, RUNNING)
        emit("start", info | {"budget_s": remaining})
        started = time.monotonic()
        try:
            await solve_fn(row["problem"], run_id, remaining)
        except (asyncio.CancelledError, KeyboardInterrupt, *fatal):
            # Keep what was spent so a resume continues with the rest of the budget.
            store.set_problem_status(run_id, key, INTERRUPTED, spent + time.monotonic() - started)
            raise
        except Exception as exc:  # one broken problem must not sink the suite
            seconds = spent + time.monotonic() - started
            store.set_problem_status(run_id, key, ERROR, seconds)
            result.failed[name] = _one_line(exc)
            emit("error", info | {"seconds": seconds, "error": result.failed[name]})
            return
        seconds = spent + time.monotonic() - started
        store.set_problem_status(run_id, key, DONE, seconds)
        result.solved_now.append(name)
        emit("done", info | {"seconds": seconds})
