"""Baseline times are stored per (problem, device and versions) and reused by later runs; so are
the trusted runner's step costs (the calibration), per host."""

from __future__ import annotations

import asyncio
import socket
import sqlite3

from kernelscale.propose.base import Candidate
from kernelscale.search.base import Budget
from kernelscale.search.evaluator import Evaluator
from kernelscale.search.session import Session
from kernelscale.search.settings import RunSettings
from kernelscale.store.db import SCHEMA_VERSION, Store
from kernelscale.verify.calibration import PROTOCOL, STEP_NAMES
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
        conn.execute("DROP TABLE calibrations")
        conn.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    store = Store(path)
    store.save_baselines("p", "dev", {"eager": 2.0})
    assert store.baselines("p", "dev") == {"eager": 2.0}
    store.save_calibration("p", "dev", {"host": "h", "steps": {}})
    assert store.calibrations("p", "dev") == [{"host": "h", "steps": {}}]
    version = store.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    store.close()
    assert int(version) == SCHEMA_VERSION == 3


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


def _calibration(host: str, stage_ms: float) -> dict:
    steps = {name: [0.5, 0.05] for name in STEP_NAMES} | {"stage": [stage_ms, 0.1]}
    return {"host": host, "protocol": PROTOCOL, "steps": steps}


def test_a_calibration_stored_under_another_protocol_is_measured_again():
    """A commit step stored before the digest's per-run weights bound a cheaper digest than the
    one honest candidates now run: only figures of this protocol's steps are reused."""
    from kernelscale.verify.calibration import _stored_here
    from kernelscale.verify.options import VerifyOptions

    mine = _calibration(socket.gethostname(), 7.0)
    assert _stored_here(VerifyOptions(known_calibrations=[mine])).stage.median_ms == 7.0
    older = {key: value for key, value in mine.items() if key != "protocol"}
    assert _stored_here(VerifyOptions(known_calibrations=[older])) is None
    assert _stored_here(VerifyOptions(known_calibrations=[dict(mine, protocol=PROTOCOL - 1)])) is None


def test_a_measured_calibration_is_kept_per_host_and_reused(tmp_path):
    prob = problem("attention/p", 16, kind="attention")
    settings = RunSettings(db_path=tmp_path / "k.db", proposer="compiler")
    verdict = _measured()
    verdict.calibration = _calibration("gpu-host-1", 7.0)
    session = Session(settings, executor_factory=lambda s: FakePool(verdict))
    pool = session.prepare_pool()
    assert session.verify_options(prob).known_calibrations is None  # nothing stored yet
    run_id = session.store.create_run("solve", prob.name, {})
    session.store.add_problem(run_id, prob)
    evaluate = Evaluator(session.store, pool, run_id, prob, session.verify_options(prob), Budget(), None)
    asyncio.run(evaluate(Candidate(code="x = 1\n", proposer="test")))
    # The run's next attempt and the next run both send it; the oracle picks its host's.
    asyncio.run(evaluate(Candidate(code="x = 2\n", proposer="test")))
    assert pool.options_seen[1].known_calibrations == [verdict.calibration]
    assert session.verify_options(prob).known_calibrations == [verdict.calibration]
    # A second host's measurement joins the first; one host's newer figures replace its old ones.
    pool.verdict = _measured()
    pool.verdict.calibration = _calibration("gpu-host-2", 9.0)
    asyncio.run(evaluate(Candidate(code="x = 3\n", proposer="test")))
    pool.verdict.calibration = _calibration("gpu-host-1", 8.0)
    asyncio.run(evaluate(Candidate(code="x = 4\n", proposer="test")))
    stored = {c["host"]: c["steps"]["stage"][0] for c in session.verify_options(prob).known_calibrations}
    assert stored == {"gpu-host-1": 8.0, "gpu-host-2": 9.0}
    fresh = Session(
        RunSettings(db_path=tmp_path / "k.db", fresh_baselines=True),
        executor_factory=lambda s: FakePool(_measured()),
    )
    fresh.prepare_pool()
    assert fresh.verify_options(prob).known_calibrations is None  # --fresh-baselines: measured again
    session.close_store()
    fresh.close_store()


def test_an_oracle_uses_only_its_own_host_s_stored_calibration(scaled_exp):
    """A fresh oracle measures where only another host's calibration is given; a second fresh
    oracle given its own host's (with a stage cost it could not have measured) uses that one."""
    from conftest import TESTS, SyncPool

    good = (TESTS / "problems" / "good_scaled_exp.py").read_text()
    elsewhere = _calibration("not-" + socket.gethostname(), 999.0)
    pool = SyncPool()
    try:
        first = pool.verify(scaled_exp, good, known_calibrations=[elsewhere])
    finally:
        pool.close()
    assert first.status == "correct", first.headline()
    assert first.time_stats["stored_calibration"] is False
    assert first.calibration["host"] == socket.gethostname()
    assert first.time_stats["trusted_stage_ms"] != 999.0
    mine = dict(first.calibration, steps=dict(first.calibration["steps"], stage=[123.0, 1.0]))
    pool = SyncPool()
    try:
        second = pool.verify(scaled_exp, good + "\n# again\n", known_calibrations=[elsewhere, mine])
    finally:
        pool.close()
    assert second.status == "correct", second.headline()
    assert second.time_stats["stored_calibration"] is True and second.calibration == {}
    assert second.time_stats["trusted_stage_ms"] == 123.0


def test_only_a_run_s_last_attempts_wait_for_baselines_still_compiling(tmp_path):
    """Early verdicts do not wait for a compile (the first verdict comes sooner); the last
    attempts by the attempt budget do, so a short run still measures every baseline."""
    prob = problem("attention/p", 16, kind="attention")
    settings = RunSettings(db_path=tmp_path / "k.db", proposer="compiler")
    session = Session(settings, executor_factory=lambda s: FakePool(_measured()))
    pool = session.prepare_pool()
    run_id = session.store.create_run("solve", prob.name, {})
    session.store.add_problem(run_id, prob)
    for attempts, waits in ((3, [False, False, True]), (1, [True]), (None, [False, False])):
        pool.options_seen.clear()
        evaluate = Evaluator(
            session.store, pool, run_id, prob, session.verify_options(prob), Budget(attempts=attempts), None
        )
        for i in range(len(waits)):
            asyncio.run(evaluate(Candidate(code=f"x = {attempts}{i}\n", proposer="test")))
        assert [o.wait_for_builds for o in pool.options_seen] == waits
    session.close_store()
