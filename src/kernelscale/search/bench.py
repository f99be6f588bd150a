"""Benchmark a whole suite: solve every problem with a per-problem budget, in one run record.

A bench run is resumable: problems already `done` in that run are skipped, a problem that was
interrupted continues with what is left of its budget, and one that failed with an error is tried
again. The per-problem search is a parameter (`solve_fn`), so the bench bookkeeping is the same
whichever proposer or strategy does the work.

Contract for `solve_fn(problem, run_id, budget_s)`: it records its attempts in the store under
`run_id` (Store.add_attempt) with `elapsed_s` measured from the start of *this problem's* search,
so that "time to the first correct kernel" and the solved-over-time figure are per problem; it
returns when its budget is spent (bench does not kill it). Raising an ordinary exception marks
only that problem `error`; raising one of `fatal` (the proposer cannot go on at all) stops the
bench, since every later problem would fail the same way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kernelscale.problems import scan_suite
from kernelscale.problems.problem import Problem
from kernelscale.propose.base import ProposerError
from kernelscale.store.db import RunProblem, Store

SolveFn = Callable[[Problem, int, float], None]
EventFn = Callable[[str, dict], None]

DONE, RUNNING, ERROR, INTERRUPTED = "done", "running", "error", "interrupted"


class BenchError(ValueError):
    """A bench that cannot start (bad budget, resuming a run that is not a bench); one line for users."""


@dataclass
class BenchResult:
    run_id: int
    status: str  # "done" when every problem is done, else "incomplete"
    solved_now: list[str] = field(default_factory=list)  # problems run to completion by this call
    skipped: list[str] = field(default_factory=list)  # already done in the resumed run
    failed: dict[str, str] = field(default_factory=dict)  # problem -> one-line error


def bench(
    suite_or_dir: str | Path | None,
    *,
    solve_fn: SolveFn,
    store: Store,
    per_problem_budget_s: float | None = None,
    resume: int | None = None,
    tolerance: str | None = None,
    options: dict | None = None,
    on_event: EventFn | None = None,
    fatal: tuple[type[BaseException], ...] = (ProposerError,),
    clock: Callable[[], float] = time.monotonic,
) -> BenchResult:
    """Solve every problem of `suite_or_dir` ("ops", "attention" or a directory of KernelBench files),
    one after the other (`kernelscale.search.spread.bench_spread` runs several side by side, with
    the same bookkeeping).

    A new run stores `options` (proposer, strategy, device: whatever the caller wants recorded)
    with the budget and tolerance. With `resume`, the run's own problem list is used (the files
    may have changed since) and the budget defaults to the stored one. Events for progress
    displays: "start", "skip", "done", "error", each with run_id, problem, index, total (and
    seconds / error). Raises ProblemError, StoreError or BenchError with one-line messages.
    """
    context = open_bench(store, suite_or_dir, per_problem_budget_s, resume, tolerance, options)
    context.fatal, context.clock = fatal, clock
    context.emit = on_event or context.emit
    try:
        for row, info in pending_problems(context):
            remaining = begin_problem(context, row, info)
            if remaining is not None:
                with solving(context, row, info):
                    solve_fn(row.problem, context.run_id, remaining)
    except (KeyboardInterrupt, *fatal) as exc:
        store.finish_run(context.run_id, ERROR if isinstance(exc, fatal) else INTERRUPTED)
        raise
    return close_bench(context)


@dataclass
class BenchContext:
    """What every problem of one bench call shares."""

    store: Store
    run_id: int
    budget: float
    result: BenchResult
    emit: EventFn = lambda kind, info: None
    fatal: tuple[type[BaseException], ...] = (ProposerError,)
    clock: Callable[[], float] = time.monotonic


def open_bench(store: Store, target, budget, resume, tolerance, options) -> BenchContext:
    """A new bench run, or the resumed one, with its per-problem budget."""
    if resume is None:
        run_id, budget = _new_run(store, target, budget, tolerance, options or {})
    else:
        run_id, budget = _resumed_run(store, resume, target, budget, tolerance)
    return BenchContext(store, run_id, budget, BenchResult(run_id, "incomplete"))


def pending_problems(context: BenchContext) -> Iterator[tuple[dict, dict]]:
    """The run's problems not yet done, in the suite's order, with their event info; the done ones
    are reported as skipped."""
    rows = context.store.run_problems(context.run_id)
    for index, row in enumerate(rows):
        info = {"run_id": context.run_id, "problem": row.name, "index": index, "total": len(rows)}
        if row.status == DONE:
            context.result.skipped.append(row.name)
            context.emit("skip", info)
            continue
        yield row, info


def begin_problem(context: BenchContext, row: RunProblem, info: dict) -> float | None:
    """Mark the problem running and return what is left of its budget; None (and `done`) when an
    earlier session used all of it."""
    store, name = context.store, row.name
    spent = row.seconds_spent
    remaining = context.budget - spent
    if remaining <= 0:  # interrupted after its whole budget was used: nothing left to try
        store.set_problem_status(context.run_id, row.problem_hash, DONE)
        context.result.solved_now.append(name)
        context.emit("done", info | {"seconds": spent})
        return None
    store.set_problem_status(context.run_id, row.problem_hash, RUNNING)
    context.emit("start", info | {"budget_s": remaining})
    return remaining


@contextmanager
def solving(context: BenchContext, row: RunProblem, info: dict) -> Iterator[None]:
    """Around one problem's search, sync or async: records how it ended and the seconds it spent
    (cumulative). An ordinary exception marks only this problem `error` and is swallowed (one
    broken problem must not sink the suite); Ctrl-C, a cancellation or a fatal error keeps what
    was spent, so a resume continues with the rest of the budget, and goes on up."""
    store, key, name = context.store, row.problem_hash, row.name
    spent, started = row.seconds_spent, context.clock()
    try:
        yield
    except (asyncio.CancelledError, KeyboardInterrupt, *context.fatal):
        store.set_problem_status(context.run_id, key, INTERRUPTED, spent + context.clock() - started)
        raise
    except Exception as exc:  # noqa: BLE001 - recorded as this problem's error
        seconds = spent + context.clock() - started
        store.set_problem_status(context.run_id, key, ERROR, seconds)
        context.result.failed[name] = _one_line(exc)
        context.emit("error", info | {"seconds": seconds, "error": context.result.failed[name]})
        return
    seconds = spent + context.clock() - started
    store.set_problem_status(context.run_id, key, DONE, seconds)
    context.result.solved_now.append(name)
    context.emit("done", info | {"seconds": seconds})


def close_bench(context: BenchContext) -> BenchResult:
    """The run is `done` when every problem is; otherwise `incomplete` (resume it)."""
    statuses = [r.status for r in context.store.run_problems(context.run_id)]
    context.result.status = DONE if all(s == DONE for s in statuses) else "incomplete"
    context.store.finish_run(context.run_id, context.result.status)
    return context.result


def _new_run(store: Store, target, budget, tolerance, options: dict) -> tuple[int, float]:
    if target is None:
        raise BenchError(
            "bench needs a suite (ops, attention, attention-decode) or a directory of problem files"
        )
    budget = _check_budget(budget)
    problems = load_suite_problems(str(target), tolerance)
    recorded = {"per_problem_budget_s": budget, "tolerance": tolerance, **options}
    run_id = store.create_run("bench", str(target), recorded)
    for position, problem in enumerate(problems):
        store.add_problem(run_id, problem, position)
    return run_id, budget


def _resumed_run(store: Store, run_id: int, target, budget, tolerance) -> tuple[int, float]:
    run = store.get_run(run_id)
    if run.command != "bench":
        raise BenchError(
            f"run {run_id} is a `{run.command}` run, not a bench: resume it with `{run.command}`"
        )
    if target is not None and not _same_target(str(target), run.target):
        raise BenchError(f"run {run_id} benchmarked {run.target}, not {target}")
    budget = _check_budget(budget if budget is not None else run.options.get("per_problem_budget_s"))
    if not store.run_problems(run_id):
        # The earlier call stopped between creating the run and listing its problems.
        stored_tolerance = tolerance or run.options.get("tolerance")
        for position, problem in enumerate(load_suite_problems(run.target, stored_tolerance)):
            store.add_problem(run_id, problem, position)
    store.reopen_run(run_id)
    return run_id, budget


def load_suite_problems(target: str, tolerance: str | None = None) -> list[Problem]:
    """Every problem of a built-in suite or directory, in a stable (sorted) order; files that are
    not problems are skipped (the CLI names them, from the same scan_suite)."""
    scan = scan_suite(target, tolerance=tolerance)
    if not scan.problems:
        why = "; ".join(f"{entry.path}: {entry.why}" for entry in scan.skipped[:3])
        raise BenchError(
            f"{target} holds no problem files (*.py defining Model or score_mod/mask_mod)"
            + (f"; skipped {why}" if why else "")
        )
    return scan.problems


def _check_budget(budget) -> float:
    if budget is None:
        raise BenchError("bench needs a per-problem budget (seconds)")
    budget = float(budget)
    if not budget > 0:
        raise BenchError(f"per-problem budget must be positive, got {budget:g} s")
    return budget


def _same_target(given: str, stored: str) -> bool:
    if given == stored:
        return True
    return Path(given).exists() and Path(stored).exists() and Path(given).resolve() == Path(stored).resolve()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
