"""Local worker slots with CPU workers standing in for GPUs: placement, replacement, one retry."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from executor_helpers import settled_status
from kernelscale.problems import load_problem
from kernelscale.search.executor import make_executor
from kernelscale.search.strategies import make_strategy
from kernelscale.verify import slots
from kernelscale.verify.options import VerifyOptions
from kernelscale.verify.pool import oracle_env

TESTS = Path(__file__).parent
GOOD = (TESTS / "problems" / "good_scaled_exp.py").read_text()
OPTIONS = VerifyOptions(timeout_s=60)


def test_one_worker_per_chosen_gpu_pinned_by_cuda_visible_devices(monkeypatch, tmp_path):
    monkeypatch.setattr(slots, "visible_gpus", lambda spec: [0, 2] if spec == "0,2" else [0, 1, 2, 3])
    assert [w.gpu for w in slots.local_workers("cuda", "0,2", None)] == [0, 2]
    assert [w.name for w in slots.local_workers("cuda", "all", None)] == ["gpu0", "gpu1", "gpu2", "gpu3"]
    assert oracle_env(str(tmp_path), 2)["CUDA_VISIBLE_DEVICES"] == "2"
    assert [w.gpu for w in slots.local_workers("cpu", None, 3)] == [None, None, None]


def test_parallel_runs_one_chain_per_worker_it_is_given():
    assert make_strategy("parallel", workers=6).chains == 6
    assert make_strategy("parallel").chains == 4


def test_worker_killed_mid_run_is_replaced_and_its_attempt_retried(scaled_exp):
    async def scenario():
        async with make_executor("local", device="cpu", workers=3) as pool:
            first_pids = [w.pid for w in pool.workers]
            running = [
                asyncio.ensure_future(pool.verify(scaled_exp, GOOD + f"\n# copy {i}\n", OPTIONS))
                for i in range(3)
            ]
            await asyncio.sleep(3)  # every worker holds an attempt now
            os.killpg(pool.workers[0].pid, signal.SIGKILL)
            verdicts = await asyncio.gather(*running)
            for _ in range(120):  # the replacement starts in the background
                if pool.replacements:
                    break
                await asyncio.sleep(0.5)
            after = await asyncio.gather(
                *(pool.verify(scaled_exp, GOOD + f"\n# again {i}\n", OPTIONS) for i in range(3))
            )
            return first_pids, [w.pid for w in pool.workers], pool, verdicts, after

    first_pids, pids, pool, verdicts, after = asyncio.run(scenario())
    assert pool.replacements == 1 and pool.retries == 1
    assert pids[0] != first_pids[0] and pids[1:] == first_pids[1:]
    assert all(settled_status(v) == "correct" for v in verdicts + after), [
        v.headline() for v in verdicts + after
    ]


def test_verifier_fault_is_retried_once_then_reported(tmp_path):
    flag = tmp_path / "CRASH_ORACLE"
    flag.write_text("raise")
    problem = load_problem(TESTS / "problems" / "fragile_reference.py")
    problem = problem.with_options(
        source=problem.source.replace('"/nonexistent/CRASH_ORACLE"', repr(str(flag)))
    )

    async def scenario():
        async with make_executor("local", device="cpu", workers=2) as pool:
            return await pool.verify(problem, GOOD, OPTIONS), pool.retries

    verdict, retries = asyncio.run(scenario())
    assert retries == 1
    assert verdict.status == "runtime_error" and "retried once on another worker" in verdict.reason
    assert "the reference failed" in verdict.reason
