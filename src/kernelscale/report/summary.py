"""What a run found, per problem and per suite, computed from the store alone.

The numbers follow KernelBench: fast_p is the share of *all* problems of the run (unsolved ones
count against it) that are correct and more than p times faster than the baseline. Speedups are
read from the best attempt's verdict, over eager by default and also over the strongest baseline
that verdict measured (the one a user already has).

"Best" is the rule of `kernelscale.propose.best` (the same one solve uses for best_kernel.py): the
fastest correct attempt not marked suspect; under the CPU interpreter the first correct attempt,
with no speedup claimed.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from kernelscale.propose.base import Attempt
from kernelscale.propose.best import best_attempt, improvements
from kernelscale.store.db import RunProblem, RunRecord, Store

FAST_P = (0.0, 1.0, 1.5, 2.0)
PRIMARY = "eager"
STRONGEST = "strongest"
INTERPRETED_LABEL = "interpreted, not a performance number"
_BASELINE_ORDER = ("eager", "compile", "flex", "sdpa")


@dataclass
class ProblemSummary:
    name: str
    problem_hash: str
    kind: str
    status: str  # the run's bookkeeping: pending, running, done, error, interrupted
    seconds_spent: float
    tolerance: str
    attempts: int = 0
    n_correct: int = 0
    n_suspect: int = 0
    correct: bool = False
    first_correct_s: float | None = None
    first_fast_s: float | None = None  # first correct attempt faster than eager
    best_attempt_id: int | None = None
    best_time_ms: float | None = None
    baselines_ms: dict[str, float] = field(default_factory=dict)
    speedup: dict[str, float] = field(default_factory=dict)  # of the best; empty when interpreted
    interpreted: bool = False
    device: str = ""
    best_code: str | None = None

    def speedup_over(self, baseline: str) -> float | None:
        """Speedup of the best over `baseline` ("strongest": the slowest-to-beat one measured)."""
        if baseline == STRONGEST:
            return min(self.speedup.values()) if self.speedup else None
        return self.speedup.get(baseline)

    @property
    def strongest_baseline(self) -> str | None:
        return min(self.speedup, key=self.speedup.__getitem__) if self.speedup else None


@dataclass
class SpeedupStats:
    """Suite-level speed numbers against one baseline ("eager" or "strongest")."""

    baseline: str
    fast_p: dict[float, float | None]
    geomean: float | None
    median: float | None
    n_measured: int  # correct problems with a measured speedup over this baseline


@dataclass
class RunSummary:
    run: RunRecord
    problems: list[ProblemSummary]
    interpreted: bool
    baselines: list[str]
    devices: list[str]
    stats: dict[str, SpeedupStats]

    @property
    def n_problems(self) -> int:
        return len(self.problems)

    @property
    def n_correct(self) -> int:
        return sum(p.correct for p in self.problems)

    @property
    def correctness_rate(self) -> float | None:
        return self.n_correct / self.n_problems if self.problems else None


def summarize_run(store: Store, run_id: int) -> RunSummary:
    """Summary of one run; raises StoreError for an unknown run id."""
    run = store.get_run(run_id)
    problems = [
        summarize_problem(row, store.attempts(run_id, row.problem_hash)) for row in store.run_problems(run_id)
    ]
    return summarize(run, problems)


def summarize(run: RunRecord, problems: list[ProblemSummary]) -> RunSummary:
    interpreted = any(p.interpreted for p in problems) and not any(p.speedup for p in problems)
    baselines = order_baselines({name for p in problems for name in p.speedup})
    devices = sorted({p.device for p in problems if p.device})
    stats = {key: speedup_stats(problems, key, interpreted) for key in (PRIMARY, STRONGEST)}
    return RunSummary(run, problems, interpreted, baselines, devices, stats)


def summarize_problem(row: RunProblem, attempts: list[Attempt]) -> ProblemSummary:
    """One problem of a run: `row` is a `Store.run_problems` row, `attempts` its attempts."""
    problem = row.problem
    tolerance = problem.tolerance
    if problem.tolerance_override is not None:
        tolerance = f"atol=rtol={problem.tolerance_override:g}"
    summary = ProblemSummary(
        name=row.name,
        problem_hash=row.problem_hash,
        kind=problem.kind,
        status=row.status,
        seconds_spent=row.seconds_spent,
        tolerance=tolerance,
        attempts=len(attempts),
    )
    correct = [a for a in attempts if a.verdict.ok]
    trusted = [a for a in correct if not a.verdict.suspect]
    summary.n_correct = len(correct)
    summary.n_suspect = len(correct) - len(trusted)
    summary.interpreted = any(a.verdict.interpreted for a in attempts)
    summary.device = _device_name(attempts)
    if not trusted:
        return summary
    summary.correct = True
    summary.first_correct_s = min(a.elapsed_s for a in trusted)
    best = best_attempt(trusted)
    verdict = best.verdict
    summary.best_attempt_id = best.attempt_id
    summary.best_time_ms = verdict.time_ms
    summary.best_code = best.candidate.code
    summary.device = _device_name([best]) or summary.device
    if not verdict.interpreted and verdict.time_ms is not None:
        summary.baselines_ms = dict(verdict.baselines)
        summary.speedup = {k: float(v) for k, v in verdict.speedup.items() if v is not None and v > 0}
        fast = [a.elapsed_s for a in trusted if (a.verdict.speedup.get(PRIMARY) or 0.0) > 1.0]
        summary.first_fast_s = min(fast) if fast else None
    return summary


def speedup_stats(problems: list[ProblemSummary], baseline: str, interpreted: bool) -> SpeedupStats:
    """fast_p over all problems plus geomean/median over the correct ones measured.

    Under the interpreter nothing is a performance number, so every figure is None.
    """
    if interpreted or not problems:
        return SpeedupStats(baseline, {p: None for p in FAST_P}, None, None, 0)
    measured = [s for s in (p.speedup_over(baseline) for p in problems if p.correct) if s is not None]
    return SpeedupStats(
        baseline=baseline,
        fast_p={p: fast_p(problems, p, baseline) for p in FAST_P},
        geomean=geomean(measured),
        median=statistics.median(measured) if measured else None,
        n_measured=len(measured),
    )


def fast_p(problems: list[ProblemSummary], p: float, baseline: str = PRIMARY) -> float:
    """Share of all problems that are correct and more than `p` times faster than `baseline`.

    Any measured time is faster than 0x, so fast_0 is the correctness rate, as in KernelBench.
    """
    if not problems:
        return 0.0
    hits = 0
    for prob in problems:
        speed = prob.speedup_over(baseline)
        if prob.correct and (p <= 0 or (speed is not None and speed > p)):
            hits += 1
    return hits / len(problems)


def geomean(values: list[float]) -> float | None:
    positive = [v for v in values if v > 0]
    return math.exp(statistics.fmean(math.log(v) for v in positive)) if positive else None


def order_baselines(names) -> list[str]:
    """eager, compile, flex*, sdpa*, then the rest alphabetically: the order tables show them in."""

    def key(name: str) -> tuple[int, str]:
        for rank, prefix in enumerate(_BASELINE_ORDER):
            if name.startswith(prefix):
                return rank, name
        return len(_BASELINE_ORDER), name

    return sorted(set(names), key=key)


def flex_baseline(names) -> str | None:
    """The FlexAttention baseline's name among those measured ("flex", or "flex_*")."""
    ordered = [n for n in order_baselines(names) if n.startswith("flex")]
    return "flex" if "flex" in ordered else (ordered[0] if ordered else None)


def solved_curve(problems: list[ProblemSummary], attr: str = "first_correct_s") -> list[tuple[float, float]]:
    """Points (seconds into a problem, share of all problems solved by then), as a step curve.

    `attr` is "first_correct_s" (correct) or "first_fast_s" (correct and faster than eager).
    """
    if not problems:
        return []
    times = sorted(t for t in (getattr(p, attr) for p in problems) if t is not None)
    points = [(0.0, 0.0)]
    for i, t in enumerate(times, start=1):
        points.append((t, i / len(problems)))
    return points


def best_over_time(attempts: list[Attempt]) -> dict[str, list[tuple[float, float]]]:
    """Per baseline, the best attempt's speedup at each moment the best changed (measured runs only)."""
    curves: dict[str, list[tuple[float, float]]] = {}
    for attempt in improvements(attempts):
        v = attempt.verdict
        if v.interpreted or v.time_ms is None:
            continue
        for name, ratio in v.speedup.items():
            if ratio is not None:
                curves.setdefault(name, []).append((attempt.elapsed_s, ratio))
    return {name: curves[name] for name in order_baselines(curves)}


def _device_name(attempts: list[Attempt]) -> str:
    for attempt in attempts:
        device = attempt.verdict.device or {}
        name = device.get("name") or device.get("kind")
        if name:
            kind = device.get("kind")
            return f"{name} ({kind})" if kind and kind != name and kind != "cuda" else str(name)
    return ""
