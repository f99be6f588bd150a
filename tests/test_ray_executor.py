"""The Ray executor on a real local Ray instance: CPU actors, interpreter kernels.

The same suite through the local pool and through Ray gives the same verdicts and best kernels;
a Ray worker process killed mid-run loses no finished verdict and the run completes; a Ray run
resumes. Every verdict lands in the driver's SQLite store.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from executor_helpers import settled_status
from kernelscale.problems import load_problem
from kernelscale.propose.replay import ReplayProposer
from kernelscale.search.session import Session
from kernelscale.search.settings import RunSettings
from kernelscale.search.solve import solve
from kernelscale.store.db import Store
from kernelscale.verify.options import VerifyOptions

ray = pytest.importorskip(
    "ray", reason="Ray is not installed (pip install 'kernelscale[ray]'; CI installs it)"
)

TESTS = Path(__file__).parent
EXAMPLES = TESTS.parent / "src" / "kernelscale" / "examples"
GOOD = (TESTS / "problems" / "good_scaled_exp.py").read_text()
BAD = GOOD.replace("* 2.0 + y", "* 2.0")
FAST = VerifyOptions(timeout_s=120, cpu_calls=1)  # one interpreted timing call: CI has two cores


@pytest.fixture(scope="module")
def ray_instance():
    import kernelscale

    # Ray's worker processes must import this very kernelscale (a source checkout may differ from
    # the installed one).
    root = os.path.dirname(os.path.dirname(os.path.realpath(kernelscale.__file__)))
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level="WARNING",
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": root}},
    )
    yield
    ray.shutdown()


def _suite() -> dict[str, list[str]]:
    """Four problems (an attention variant, two ops, a test problem), one correct kernel each."""
    from kernelscale.propose.compiler.proposer import CompilerProposer

    attention = CompilerProposer(device="cpu").first_kernel(load_problem("attention/causal"))
    return {
        "attention/causal": [attention],
        "ops/softmax": [(EXAMPLES / "softmax.py").read_text()],
        "ops/add_mul_tanh": [(EXAMPLES / "add_mul_tanh.py").read_text()],
        str(TESTS / "problems" / "scaled_exp.py"): [BAD, GOOD],
    }


def _new_run(store: Store, problem, kind: str) -> int:
    run_id = store.create_run("solve", problem.name, {"executor": kind})
    store.add_problem(run_id, problem)
    return run_id


def _session(kind: str, db: Path, strategy: str, progress=None) -> Session:
    """A run's owner with two CPU workers, local or Ray, as `solve --executor KIND --workers 2`."""
    settings = RunSettings(
        proposer="replay",
        strategy=strategy,
        budget_s=600,
        device="cpu",
        db_path=db,
        executor=kind,
        workers=2,
        verify_options=FAST,
    )
    return Session(settings, progress)


async def _run_suite(kind: str, db: Path, suite: dict[str, list[str]]) -> dict:
    """Every problem at once over two workers, as bench spreads them; what the store then holds."""
    session = await _session(kind, db, "refine").start()
    store = session.store
    try:

        async def one(ref: str, sources: list[str]) -> int:
            problem = load_problem(ref)
            run_id = _new_run(store, problem, kind)
            await session.search(problem, run_id, ReplayProposer(sources), [], workers=1)
            return run_id

        run_ids = await asyncio.gather(*(one(ref, sources) for ref, sources in suite.items()))
    finally:
        await session.close()
    outcome = {}
    for ref, run_id in zip(suite, run_ids):
        stored = store.attempts(run_id)  # read back from SQLite: the driver's store has every verdict
        correct = [a.candidate.code for a in stored if settled_status(a.verdict) == "correct"]
        outcome[ref] = ([settled_status(a.verdict) for a in stored], correct)
    session.close_store()
    return outcome


def test_suite_gives_the_same_verdicts_and_best_kernels_through_ray(ray_instance, tmp_path):
    suite = _suite()
    local = asyncio.run(_run_suite("local", tmp_path / "local.db", suite))
    through_ray = asyncio.run(_run_suite("ray", tmp_path / "ray.db", suite))
    assert through_ray == local
    assert local[str(TESTS / "problems" / "scaled_exp.py")] == (["incorrect", "correct"], [GOOD])
    for ref, sources in suite.items():  # one correct kernel per problem: it is the best one
        assert local[ref][1] == [sources[-1]], (ref, local[ref][0])


def test_killed_ray_worker_loses_no_verdict_and_the_run_resumes(ray_instance, tmp_path, scaled_exp):
    db = tmp_path / "k.db"
    sources = [GOOD + f"\n# variant {i}\n" for i in range(3)]
    killed: dict = {}

    async def first_run():
        session = await _session("ray", db, "parallel").start()
        pool = session.pool
        victim = pool.workers[0]
        send = victim.ask

        async def ask_a_dying_worker(request: dict, timeout: float):
            # The first attempt this actor is given is in flight when its process is killed
            # (killed as the request goes out, so the kill cannot miss the attempt).
            if not killed:
                killed["pid"] = victim.pid
                os.kill(victim.pid, signal.SIGKILL)
            return await send(request, timeout)

        victim.ask = ask_a_dying_worker
        try:
            run_id = _new_run(session.store, scaled_exp, "ray")
            outcome = await session.search(scaled_exp, run_id, ReplayProposer(sources), [])
            session.store.finish_run(run_id, "interrupted")
            # The replacement actor starts in the background; the search may end before it is up.
            await asyncio.wait_for(asyncio.gather(*pool._background), 120)
            pids = [w.pid for w in pool.workers]
            retries = pool.retries
        finally:
            await session.close()
            session.close_store()
        return run_id, outcome.attempts, outcome.stopped, pids, retries

    run_id, attempts, stopped, pids, retries = asyncio.run(first_run())
    assert killed and killed["pid"] not in pids  # the killed actor was replaced
    assert retries == 1  # its in-flight attempt was verified again elsewhere
    assert stopped == "exhausted" and sorted(a.candidate.code for a in attempts) == sorted(sources)
    assert [settled_status(a.verdict) for a in attempts] == ["correct"] * 3, [
        a.verdict.headline() for a in attempts
    ]

    more = GOOD + "\n# after resume\n"
    result = solve(
        None,
        proposer=ReplayProposer([more]),
        strategy="refine",
        budget_s=600,
        max_attempts=4,
        db_path=db,
        resume=run_id,
        out_dir=tmp_path / "out",
        device="cpu",
        executor="ray",
        workers=2,
    )
    assert result.run_id == run_id
    codes = [a.candidate.code for a in result.attempts]
    assert sorted(codes[:3]) == sorted(sources) and codes[3:] == [more]
    store = Store(db)
    stored, status = store.attempts(run_id), store.get_run(run_id).status
    store.close()
    assert len(stored) == 4 and status == "finished"
