"""`kernelscale.verify(problem, code)`: one verification from synchronous code."""

from __future__ import annotations

import asyncio
from dataclasses import fields

from kernelscale.problems import Problem, load_problem
from kernelscale.verify.options import VerifyOptions
from kernelscale.verify.slots import SlotPool
from kernelscale.verify.verdict import Verdict


def verify(
    problem: Problem | str, code: str, *, device: str | None = None, tolerance: str | None = None, **options
) -> Verdict:
    """Verify one candidate's source against a problem (an id, a path, or a Problem)."""
    if not isinstance(problem, Problem):
        problem = load_problem(problem)
    if tolerance:
        problem = problem.with_options(tolerance=tolerance)
    known = {f.name for f in fields(VerifyOptions)}
    unknown = set(options) - known
    if unknown:
        raise TypeError(f"unknown verify option(s): {sorted(unknown)}")
    return asyncio.run(_verify_once(problem, code, device, VerifyOptions(**options)))


async def _verify_once(problem: Problem, code: str, device: str | None, options: VerifyOptions) -> Verdict:
    async with SlotPool.local(device=device) as pool:
        return await pool.verify(problem, code, options)
