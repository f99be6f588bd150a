"""Verifying one candidate for a run: the verdict cache, re-verifying suspects, storing attempts.

Baselines are timed once per problem per run: the first verdict that measures them stores them
(later runs on the same device and versions reuse them too) and every later attempt of the run
is sent them as known, so its verifier time goes to the candidate alone.

A verdict that says the *verifier* failed (the reference or a baseline broke, not the candidate)
is stored with its attempt and then stops the run with `VerifierFailure`: every later attempt
would fail the same way, and a budget spent on that measures nothing. Such verdicts are never
served from the cache, so a fixed problem or machine is verified afresh.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from kernelscale.problems import Problem
from kernelscale.propose.base import Attempt, Candidate, no_code_verdict
from kernelscale.propose.best import best_attempt
from kernelscale.search.base import Budget
from kernelscale.store.db import Store
from kernelscale.verify.options import VerifyOptions
from kernelscale.verify.verdict import VERIFIER_ERROR, Verdict
from kernelscale.verify.version import verifier_digest

Progress = Callable[[str, dict], None]


class VerifierFailure(RuntimeError):
    """The verifier, not the candidate, failed: the run stops at once."""


def is_verifier_failure(verdict: Verdict) -> bool:
    """The verifier's own failure, by its typed mark: a candidate can write any reason."""
    return verdict.status == "runtime_error" and verdict.verifier_fault


def _stale(verdict: Verdict) -> bool:
    """A cached verdict to verify again: the verifier's failure, or one that reads like it (a
    verdict stored before the mark existed); verifying again costs time, never trust."""
    return is_verifier_failure(verdict) or (
        verdict.status == "runtime_error" and verdict.reason.startswith(VERIFIER_ERROR)
    )


class Evaluator:
    """Verifies a candidate once per (code, problem, device), re-verifies suspects, stores all.

    `history` is what the run verified before this call (a resumed run): numbering and the best
    so far continue from it.
    """

    def __init__(
        self,
        store: Store,
        pool,
        run_id: int,
        problem: Problem,
        options: VerifyOptions,
        budget: Budget,
        progress: Progress | None,
        history: list[Attempt] | None = None,
    ):
        self.store, self.pool, self.run_id, self.problem = store, pool, run_id, problem
        self.options, self.budget, self.progress = options, budget, progress
        self.problem_hash = problem.content_hash()
        self.history = list(history or [])
        self.attempts: list[Attempt] = []
        self.first_verdict_s: float | None = None

    async def __call__(self, candidate: Candidate) -> Attempt:
        verdict, verdict_id = await self._verdict(candidate)
        attempt = Attempt(candidate=candidate, verdict=verdict, elapsed_s=self.budget.elapsed())
        attempt.attempt_id = self.store.add_attempt(self.run_id, self.problem_hash, attempt, verdict_id)
        self.attempts.append(attempt)
        if self.first_verdict_s is None:
            self.first_verdict_s = self.budget.elapsed_here()
        if self.progress:
            self.progress(
                "attempt",
                {
                    "attempt": attempt,
                    "best": best_attempt(self.history + self.attempts),
                    "n": len(self.history) + len(self.attempts),
                    "problem": self.problem.name,
                    "budget_s": self.budget.seconds,
                },
            )
        if is_verifier_failure(verdict):
            raise VerifierFailure(verdict.reason)
        return attempt

    async def _verdict(self, candidate: Candidate) -> tuple[Verdict, int]:
        # the verifier too: a verdict of an older verifier is not this one's (verify/version.py)
        key = (candidate.code_hash, self.problem_hash, f"{self.pool.device_key}|verifier {verifier_digest()}")
        cached = self.store.cached_verdict(*key)
        if cached is not None and not _stale(cached[1]):
            verdict_id, verdict = cached
            verdict.cached = True
            return verdict, verdict_id
        options = replace(self.options, wait_for_builds=self._among_the_last())
        verdict = no_code_verdict(candidate) or await self.pool.verify(self.problem, candidate.code, options)
        if verdict.suspect:
            verdict = await self._reverify(candidate, verdict)
        self._keep_baselines(verdict)
        self._keep_calibration(verdict)
        return verdict, self.store.add_verdict(*key, verdict)

    def _among_the_last(self) -> bool:
        """Is this attempt among the run's last by its attempt budget (one per worker)? Its
        verdict then waits for baselines still compiling, so that a run with few attempts
        measures them all; earlier verdicts do not wait, and a later attempt times them."""
        if self.budget.attempts is None:
            return False
        started = len(self.history) + len(self.attempts)
        return started + max(1, self.pool.size) >= self.budget.attempts

    def _keep_baselines(self, verdict: Verdict) -> None:
        """Baselines this verdict measured (not reused) on a device: the rest of this run and
        later runs reuse them."""
        if not verdict.ok or verdict.interpreted or not verdict.baselines:
            return
        if verdict.time_stats.get("baselines_host_quiet_gave_up"):
            return  # timed while a candidate may have been alive on the host: not for reuse
        reused = set(verdict.time_stats.get("stored_baselines") or [])
        measured = {name: ms for name, ms in verdict.baselines.items() if name not in reused}
        if measured:
            self.store.save_baselines(self.problem_hash, self.pool.device_key, measured)
            known = (self.options.known_baselines or {}) | measured
            self.options = replace(self.options, known_baselines=known)

    def _keep_calibration(self, verdict: Verdict) -> None:
        """A trusted runner's step costs this verdict measured on a GPU host: later runs on that
        host reuse them instead of starting a trusted runner before their first verdict."""
        if not verdict.calibration or verdict.interpreted or not verdict.ok:
            return
        self.store.save_calibration(self.problem_hash, self.pool.device_key, verdict.calibration)
        host = verdict.calibration.get("host")
        others = [c for c in self.options.known_calibrations or [] if c.get("host") != host]
        self.options = replace(self.options, known_calibrations=[verdict.calibration, *others])

    async def _reverify(self, candidate: Candidate, first: Verdict) -> Verdict:
        """A suspect result counts only if a fresh verification agrees; a time under the roofline
        floor never counts, however often it repeats."""
        second = await self.pool.verify(self.problem, candidate.code, self.options)
        agrees = second.ok and second.time_ms and abs(second.time_ms - first.time_ms) <= 0.3 * first.time_ms
        if agrees and "roofline" not in first.suspect_reason + second.suspect_reason:
            first.suspect = False
            first.suspect_reason += f" (re-verified: {second.time_ms:.4f} ms on fresh inputs)"
        else:
            first.suspect_reason += f" (re-verification: {second.headline()})"
        return first
