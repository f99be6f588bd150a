"""bench(): every problem of a suite in one run, per-problem budget, resumable, errors isolated.

The per-problem solver is a fake that writes synthetic attempts and verdicts through the real
Store API, the way the real solve loop does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kernelscale.problems import ProblemError
from kernelscale.report.summary import summarize_run
from kernelscale.search.bench import BenchError, bench
from kernelscale.store.db import Store, StoreError
from test_report_data import REFERENCE, correct, failed, record

SPEEDUPS = {"p_alpha": 2.5, "p_beta": None, "p_gamma": 0.7}  # None: never correct


@pytest.fixture
def suite(tmp_path):
    folder = tmp_path / "suite"
    folder.mkdir()
    for i, name in enumerate(SPEEDUPS):
        (folder / f"{name}.py").write_text(REFERENCE.format(n=16 + i))
    (folder / "_helpers.py").write_text("X = 1\n")  # not a problem: skipped by the loader
    return folder


class FakeSolver:
    """Records what it was asked; writes one failed and at most one correct attempt per problem."""

    def __init__(self, store: Store, explode: set[str] = frozenset(), interrupt: set[str] = frozenset()):
        self.store, self.explode, self.interrupt = store, set(explode), set(interrupt)
        self.calls: list[tuple[str, int, float]] = []

    def __call__(self, problem, run_id, budget_s):
        stem = Path(problem.name).stem
        self.calls.append((stem, run_id, budget_s))
        key = problem.content_hash()
        record(self.store, run_id, key, failed("incorrect", "mismatch"), 1.0, f"{stem}-bad")
        if stem in self.interrupt:
            raise KeyboardInterrupt
        if stem in self.explode:
            raise RuntimeError("verifier pool died\nlong traceback")
        if SPEEDUPS[stem] is not None:
            record(
                self.store, run_id, key, correct(1.0, {"eager": SPEEDUPS[stem], "compile": 1.0}), 4.0, stem
            )


def statuses(store, run_id):
    return {r.name.rsplit("/", 1)[-1].removesuffix(".py"): r.status for r in store.run_problems(run_id)}


def test_bench_runs_every_problem_in_one_run(tmp_path, suite):
    store = Store(tmp_path / "k.db")
    solver = FakeSolver(store)
    events = []
    result = bench(
        suite,
        solve_fn=solver,
        store=store,
        per_problem_budget_s=30,
        options={"proposer": "fake"},
        on_event=lambda kind, info: events.append((kind, info["problem"])),
    )
    assert result.status == "done" and not result.failed
    assert [c[0] for c in solver.calls] == ["p_alpha", "p_beta", "p_gamma"]
    assert all(run_id == result.run_id and budget == 30 for _, run_id, budget in solver.calls)
    run = store.get_run(result.run_id)
    assert (run.command, run.status, run.target) == ("bench", "done", str(suite))
    assert run.options["per_problem_budget_s"] == 30 and run.options["proposer"] == "fake"
    assert set(statuses(store, result.run_id).values()) == {"done"}
    assert [k for k, _ in events] == ["start", "done"] * 3
    # The attempts written under the stored problem hashes are what the report sees.
    summary = summarize_run(store, result.run_id)
    assert [p.correct for p in summary.problems] == [True, False, True]
    assert summary.stats["eager"].fast_p[1.0] == pytest.approx(1 / 3)
    assert [p.attempts for p in summary.problems] == [2, 1, 2]


def test_error_in_one_problem_is_isolated_and_retried_on_resume(tmp_path, suite):
    store = Store(tmp_path / "k.db")
    first = bench(suite, solve_fn=FakeSolver(store, explode={"p_beta"}), store=store, per_problem_budget_s=10)
    assert first.status == "incomplete"
    assert list(first.failed) == [str(suite / "p_beta.py")]
    assert first.failed[str(suite / "p_beta.py")] == "RuntimeError: verifier pool died"
    assert statuses(store, first.run_id) == {"p_alpha": "done", "p_beta": "error", "p_gamma": "done"}
    assert store.get_run(first.run_id).status == "incomplete"

    again = FakeSolver(store)
    second = bench(None, solve_fn=again, store=store, resume=first.run_id)
    assert second.run_id == first.run_id and second.status == "done"
    assert [c[0] for c in again.calls] == ["p_beta"]  # done problems are skipped
    assert len(second.skipped) == 2
    assert store.get_run(first.run_id).status == "done"


def test_interrupt_keeps_spent_time_and_resume_uses_the_rest(tmp_path, suite):
    ticks = iter([100.0, 107.5, 200.0, 201.0, 300.0, 302.0, 400.0, 410.0])
    clock = ticks.__next__
    store = Store(tmp_path / "k.db")
    solver = FakeSolver(store, interrupt={"p_beta"})
    with pytest.raises(KeyboardInterrupt):
        bench(suite, solve_fn=solver, store=store, per_problem_budget_s=20, clock=clock)
    run_id = store.list_runs()[0].id
    assert store.get_run(run_id).status == "interrupted"
    rows = {r.name.rsplit("/", 1)[-1]: r for r in store.run_problems(run_id)}
    assert rows["p_beta.py"].status == "interrupted" and rows["p_beta.py"].seconds_spent == 1.0
    assert rows["p_gamma.py"].status == "pending"

    resumed = FakeSolver(store)
    result = bench(str(suite), solve_fn=resumed, store=store, resume=run_id, clock=clock)
    assert [(c[0], c[2]) for c in resumed.calls] == [("p_beta", 19.0), ("p_gamma", 20.0)]
    assert result.status == "done"
    assert [r.seconds_spent for r in store.run_problems(run_id)] == [7.5, 3.0, 10.0]


@pytest.mark.parametrize("suite_id", ["ops", "attention"])
def test_builtin_suite_ids_resolve(tmp_path, suite_id):
    store = Store(tmp_path / "k.db")
    seen = []
    result = bench(
        suite_id, solve_fn=lambda p, r, b: seen.append(p.name), store=store, per_problem_budget_s=1
    )
    assert len(seen) > 3 and all(name.startswith(f"{suite_id}/") for name in seen)
    assert result.status == "done"


def test_bad_usage_is_reported_in_one_line(tmp_path, suite):
    store = Store(tmp_path / "k.db")
    noop = lambda p, r, b: None  # noqa: E731
    with pytest.raises(ProblemError, match="no such suite"):
        bench(tmp_path / "missing", solve_fn=noop, store=store, per_problem_budget_s=5)
    with pytest.raises(BenchError, match="budget"):
        bench(suite, solve_fn=noop, store=store)
    with pytest.raises(BenchError, match="positive"):
        bench(suite, solve_fn=noop, store=store, per_problem_budget_s=0)
    with pytest.raises(StoreError):
        bench(None, solve_fn=noop, store=store, resume=999)
    solve_run = store.create_run("solve", "ops/softmax", {})
    with pytest.raises(BenchError, match="not a bench"):
        bench(None, solve_fn=noop, store=store, resume=solve_run)
    run = bench(suite, solve_fn=noop, store=store, per_problem_budget_s=5).run_id
    with pytest.raises(BenchError, match="benchmarked"):
        bench("attention", solve_fn=noop, store=store, resume=run)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BenchError, match="no problem files"):
        bench(empty, solve_fn=noop, store=store, per_problem_budget_s=5)


def test_fatal_proposer_error_stops_the_bench(tmp_path, suite):
    from kernelscale.propose.base import ProposerError

    store = Store(tmp_path / "k.db")
    calls = []

    def unreachable(problem, run_id, budget_s):
        calls.append(problem.name)
        raise ProposerError("endpoint http://localhost:1 unreachable")

    with pytest.raises(ProposerError):
        bench(suite, solve_fn=unreachable, store=store, per_problem_budget_s=5)
    run = store.list_runs()[0]
    assert len(calls) == 1 and run.status == "error"  # not repeated for every later problem
    assert list(statuses(store, run.id).values()) == ["interrupted", "pending", "pending"]
