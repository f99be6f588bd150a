"""Baseline times are stored per (problem, device and versions) and reused by later runs."""

from __future__ import annotations

import asyncio
import sqlite3

from kernelscale.propose.base import Candidate
from kernelscale.search.base import Budget
from kernelscale.search.evaluator import Evaluator
from kernelscale.search.session import Session
from kernelscale.search.settings import RunSettings
from kernelscale.store.db import SCHEMA_VERSION, Store
from kernelscale.verify.verdict import Verdict
from test_report_data import GPU, problem


class FakePool:
    device, device_key, size = "cuda", "H200|cuda|torch 2.13|triton 3.6", 1

    def __init__(self, verdict: Verdict):
        self.verdict, self.options_seen = verdict, []

    async def verify(self, problem, code, options):
        self.options_seen.append(options)
        return self.verdict

    async def start(self):
        return self

    async def close(self):
        pass


def _measured(stored=()) -> Verdict:
    return Verdict(
        "correct",
        time_ms=1.0,
        baselines={"eager": 3.0, "flex": 1.5},
        speedup={"eager": 3.0, "flex": 1.5},
        device=GPU,
        time_stats={"stored_baselines": list(stored)},
    )


def test_a_verdict_s_measured_baselines_are_kept_and_reused(tmp_path):
    prob = problem("attention/p", 16, kind="attention")
    settings = RunSettings(db_path=tmp_path / "k.db", proposer="compiler")
    session = Session(settings, executor_factory=lambda s: FakePool(_measured()))
    pool = session.prepare_pool()
    assert session.verify_options(prob).known_baselines is None  # first run: nothing stored

    run_id = session.store.create_run("solve", prob.name, {})
    key = session.store.add_problem(run_id, prob)
    evaluate = Evaluator(session.store, pool, run_id, prob, session.verify_options(prob), Budget(), None)
    asyncio.run(evaluate(Candidate(code="x = 1\n", proposer="test")))
    assert pool.options_seen[0].known_baselines is None
    assert session.store.baselines(key, pool.device_key) == {"eager": 3.0, "flex": 1.5}
    assert session.verify_options(prob).known_baselines == {"eager": 3.0, "flex": 1.5}  # second run reuses
    assert session.store.baselines(key, "A100|cuda|torch 2.13|triton 3.6") == {}  # another card: not reused

    # A verdict that reused stored times does not store them again as new measurements.
    pool.verdict = _measured(stored=["eager", "flex"])
    pool.verdict.baselines = {"eager": 9.0, "flex": 9.0}
    asyncio.run(evaluate(Candidate(code="x = 2\n", proposer="test")))
    assert pool.options_seen[1].known_baselines == {"eager": 3.0, "flex": 1.5}  # the run's next attempt
    assert session.store.baselines(key, pool.device_key) == {"eager": 3.0, "flex": 1.5}

    fresh = Session(
        RunSettings(db_path=tmp_path / "k.db", fresh_baselines=True),
        executor_factory=lambda s: FakePool(_measured()),
    )
    fresh.prepare_pool()
    assert fresh.verify_options(prob).known_baselines is None  # --fresh-baselines times them again
    session.close_store()
    fresh.close_store()


def test_a_v1_store_gains_the_baselines_table(tmp_path):
    path = tmp_path / "old.db"
    Store(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE baselines")
        conn.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    store = Store(path)
    store.save_baselines("p", "dev", {"eager": 2.0})
    assert store.baselines("p", "dev") == {"eager": 2.0}
    version = store.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    store.close()
    assert int(version) == SCHEMA_VERSION == 2


def test_the_oracle_does_not_time_a_baseline_it_is_given(cpu_pool, scaled_exp):
    """The same oracle, the same problem: first every baseline is timed; then, given the eager
    time, it reports that figure as stored and times nothing for it."""
    from conftest import TESTS

    good = (TESTS / "problems" / "good_scaled_exp.py").read_text()
    first = cpu_pool.verify(scaled_exp, good)
    assert first.status == "correct" and "eager" in first.baselines
    assert first.time_stats["stored_baselines"] == []
    second = cpu_pool.verify(scaled_exp, good + "\n# again\n", known_baselines={"eager": 123.0})
    assert second.status == "correct", second.headline()
    assert second.baselines["eager"] == 123.0 and second.time_stats["stored_baselines"] == ["eager"]
