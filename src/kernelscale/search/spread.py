"""A bench whose problems run side by side, spread over the verifier's workers.

Same bookkeeping as `kernelscale.search.bench` (one run record, statuses per problem, seconds
spent, resumable), but `concurrency` problems are searched at once on one event loop, each with
its share of the workers: with 8 GPUs and a per-problem budget of 15 minutes, eight problems
finish every 15 minutes instead of one. The order in which problems start is the suite's order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from kernelscale.problems.problem import Problem
from kernelscale.propose.base import ProposerError
from kernelscale.search.bench import (
    ERROR,
    INTERRUPTED,
    BenchContext,
    BenchResult,
    EventFn,
    begin_problem,
    close_bench,
    open_bench,
    pending_problems,
    solving,
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
    context = open_bench(store, suite_or_dir, per_problem_budget_s, resume, tolerance, options)
    context.fatal = fatal
    context.emit = on_event or context.emit
    slots = asyncio.Semaphore(max(1, concurrency))
    runs = [_one_problem(context, row, info, solve_fn, slots) for row, info in pending_problems(context)]
    try:
        await _gather_or_stop(runs)
    except (asyncio.CancelledError, KeyboardInterrupt, *fatal) as exc:
        store.finish_run(context.run_id, ERROR if isinstance(exc, fatal) else INTERRUPTED)
        raise
    return close_bench(context)


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
    context: BenchContext, row: dict, info: dict, solve_fn: AsyncSolveFn, slots: asyncio.Semaphore
) -> None:
    async with slots:
        remaining = begin_problem(context, row, info)
        if remaining is not None:
            with solving(context, row, info):
                await solve_fn(row.problem, context.run_id, remaining)
