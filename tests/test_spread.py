"""bench_spread: problems side by side over the workers, with bench's bookkeeping; CLI executor errors."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from kernelscale.search.spread import bench_spread
from kernelscale.store.db import Store
from test_bench import suite  # noqa: F401 - the three-problem suite fixture
from test_cli import assert_one_line_error, kernelscale


def _spread(store, target, concurrency, fail=frozenset(), resume=None):
    running, peak, seen = set(), [0], []

    async def solve_one(problem, run_id, budget_s):
        running.add(problem.name)
        peak[0] = max(peak[0], len(running))
        seen.append(problem.name)
        await asyncio.sleep(0.2)
        running.discard(problem.name)
        if any(name in problem.name for name in fail):
            raise RuntimeError("worker pool broke\ndetails")

    return (
        asyncio.run(
            bench_spread(
                None if resume else str(target),
                solve_fn=solve_one,
                store=store,
                concurrency=concurrency,
                per_problem_budget_s=30,
                resume=resume,
            )
        ),
        peak[0],
        seen,
    )


def test_problems_run_side_by_side_up_to_the_worker_count(tmp_path, suite):  # noqa: F811
    store = Store(tmp_path / "k.db")
    result, peak, _ = _spread(store, suite, concurrency=2)
    assert result.status == "done" and len(result.solved_now) == 3 and peak == 2
    assert [r.status for r in store.run_problems(result.run_id)] == ["done"] * 3


def test_a_failed_problem_is_isolated_and_resume_runs_only_it(tmp_path, suite):  # noqa: F811
    store = Store(tmp_path / "k.db")
    result, _, _ = _spread(store, suite, concurrency=3, fail={"p_beta"})
    assert result.status == "incomplete" and list(result.failed) == [
        n for n in result.failed if "p_beta" in n
    ]
    again, _, seen = _spread(store, suite, concurrency=3, resume=result.run_id)
    assert again.status == "done" and len(seen) == 1 and "p_beta" in seen[0] and len(again.skipped) == 2


@pytest.mark.parametrize(
    "args, words",
    [
        (["--executor", "slurm"], "--executor must be local or ray"),
        (["--address", "auto"], "--address is for --executor ray"),
        (["--workers", "0"], "--workers must be at least 1"),
    ],
)
def test_bad_executor_options_are_one_line(tmp_path, args, words):
    assert_one_line_error(
        kernelscale("solve", "ops/softmax", "--device", "cpu", *args, cwd=tmp_path), 2, words
    )


def test_ray_missing_is_one_line_and_exit_2(tmp_path):
    # `ray` hidden from the import system: what a user without the extra sees.
    code = (
        "import sys; sys.modules['ray'] = None; sys.argv = ['kernelscale', 'solve', 'ops/softmax', "
        "'--executor', 'ray']; from kernelscale.cli.app import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False
    )
    assert_one_line_error(result, 2, "pip install 'kernelscale[ray]'")


def test_cancelled_bench_keeps_spent_time_and_resume_finishes(tmp_path, suite):  # noqa: F811
    store = Store(tmp_path / "k.db")

    async def slow(problem, run_id, budget_s):
        await asyncio.sleep(30)

    async def cancel_soon():
        task = asyncio.ensure_future(
            bench_spread(str(suite), solve_fn=slow, store=store, concurrency=2, per_problem_budget_s=60)
        )
        await asyncio.sleep(0.5)
        task.cancel()  # what `kernelscale bench` does on Ctrl-C
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(cancel_soon())
    run_id = store.list_runs()[0].id
    rows = store.run_problems(run_id)
    assert [r.status for r in rows] == ["interrupted", "interrupted", "pending"]
    assert all(r.seconds_spent >= 0.4 for r in rows[:2]) and store.get_run(run_id).status == "interrupted"
    again, _, seen = _spread(store, suite, concurrency=2, resume=run_id)
    assert again.status == "done" and len(seen) == 3
