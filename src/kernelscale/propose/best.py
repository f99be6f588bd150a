"""The one rule for "the best attempt" of a search: solve's best_kernel.py, the report, `show`,
the proposers' feedback and the best-so-far curves all ask this module, so they cannot disagree.

* Only correct attempts count, and a suspect one (implausible speedup, time under the roofline
  floor) never does until a re-verification cleared it: a run whose only correct kernels are
  suspect has no best.
* Among trusted attempts with a measured time, the lowest time wins (ties: found earlier).
* Under the CPU interpreter no time is a performance number, so the first correct attempt wins.
"""

from __future__ import annotations

from collections.abc import Iterable

from kernelscale.propose.base import Attempt


def trusted(attempt: Attempt) -> bool:
    """Correct and not suspect: an attempt that may be reported and shipped."""
    return attempt.verdict.ok and not attempt.verdict.suspect


def timed(attempt: Attempt) -> bool:
    """Its time is a performance number (measured on a device, not interpreted)."""
    return not attempt.verdict.interpreted and attempt.verdict.time_ms is not None


def rank_key(attempt: Attempt) -> tuple:
    """Sort key, larger is better, over any attempts: trusted first, then measured before
    interpreted, then lower time, then earlier (elapsed time, then attempt id)."""
    verdict = attempt.verdict
    is_timed = timed(attempt)
    return (
        verdict.ok,
        not verdict.suspect,
        is_timed,
        -(verdict.time_ms or 0.0) if is_timed else 0.0,
        -attempt.elapsed_s,
        -(attempt.attempt_id or 0),
    )


def best_attempt(attempts: Iterable[Attempt]) -> Attempt | None:
    """The best trusted attempt, or None when nothing trusted was found."""
    eligible = [a for a in attempts if trusted(a)]
    return max(eligible, key=rank_key) if eligible else None


def best_timed(attempts: Iterable[Attempt]) -> Attempt | None:
    """The best attempt with a measured time (what a proposer may quote as "best so far")."""
    return best_attempt(a for a in attempts if timed(a))


def improvements(attempts: Iterable[Attempt]) -> list[Attempt]:
    """In the order found, each attempt that became the best at that moment (for curves)."""
    found: list[Attempt] = []
    best: Attempt | None = None
    for attempt in sorted(attempts, key=lambda a: (a.elapsed_s, a.attempt_id or 0)):
        if trusted(attempt) and (best is None or rank_key(attempt) > rank_key(best)):
            best = attempt
            found.append(attempt)
    return found
