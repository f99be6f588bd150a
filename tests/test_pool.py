"""The pool survives its oracle dying, and runs attempts on several workers at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kernelscale.problems import load_problem
from kernelscale.verify.options import VerifyOptions
from kernelscale.verify.slots import SlotPool

TESTS = Path(__file__).parent
GOOD = (TESTS / "problems" / "good_scaled_exp.py").read_text()


def _fragile_problem(flag: Path):
    # The problem travels as source text; point its flag at this test's temporary folder.
    problem = load_problem(TESTS / "problems" / "fragile_reference.py")
    source = problem.source.replace('FLAG_PATH = "/nonexistent/CRASH_ORACLE"', f"FLAG_PATH = {str(flag)!r}")
    assert source != problem.source
    return problem.with_options(source=source)


def test_oracle_crash_costs_one_attempt(tmp_path):
    flag = tmp_path / "CRASH_ORACLE"
    problem = _fragile_problem(flag)

    async def scenario():
        async with SlotPool.local(device="cpu") as pool:
            flag.write_text("crash")
            crashed = await pool.verify(problem, GOOD, VerifyOptions(timeout_s=60))
            flag.unlink()
            recovered = await pool.verify(problem, GOOD, VerifyOptions(timeout_s=60))
            return crashed, recovered

    crashed, recovered = asyncio.run(scenario())
    assert crashed.status == "runtime_error" and "oracle" in crashed.reason
    assert recovered.status == "correct", recovered.headline() + recovered.log_tail


def test_reference_exception_is_reported_and_the_oracle_serves_on(tmp_path):
    flag = tmp_path / "CRASH_ORACLE"
    problem = _fragile_problem(flag)

    async def scenario():
        async with SlotPool.local(device="cpu") as pool:
            first = await pool.verify(problem, GOOD, VerifyOptions(timeout_s=60))  # loads the problem
            flag.write_text("raise")
            failed = await pool.verify(problem, GOOD, VerifyOptions(timeout_s=60))
            flag.unlink()
            again = await pool.verify(problem, GOOD, VerifyOptions(timeout_s=60))
            return first, failed, again

    first, failed, again = asyncio.run(scenario())
    assert first.ok and again.ok
    assert failed.status == "runtime_error" and "the reference failed" in failed.reason
    assert "not the candidate" in failed.reason


def test_two_workers_verify_concurrently(scaled_exp):
    async def scenario():
        async with SlotPool.local(device="cpu", workers=2) as pool:
            assert pool.size == 2
            return await asyncio.gather(
                *(pool.verify(scaled_exp, GOOD, VerifyOptions(timeout_s=60)) for _ in range(3))
            )

    verdicts = asyncio.run(scenario())
    assert [v.status for v in verdicts] == ["correct"] * 3, [v.headline() for v in verdicts]
