"""The timer rule as a function of the figures it joins: each step around the window is held to
the trusted runner's, on the GPU bounds and the CPU bounds alike.

The planted candidates in hostile_protocol.py prove the rule end to end where the attack can be
run (staging and shipping on the CPU; the flush only on a GPU, where work can stay queued); here
each rule is checked on figures, so the flush rule is exercised on every machine.
"""

from __future__ import annotations

import pytest

from kernelscale.verify.calibration import Calibration, StepCost
from kernelscale.verify.candidate import ClockReading
from kernelscale.verify.replies import AttemptFailed
from kernelscale.verify.timing_rounds import TimingResult

TRUSTED = Calibration(
    handshake=StepCost(0.30, 0.05),
    ship=StepCost(2.0, 0.1),
    stage=StepCost(3.0, 0.1),
    flush=StepCost(0.10, 0.005),
    probe=StepCost(0.02, 0.002),
    key=StepCost(0.40, 0.01),
    commit=StepCost(0.35, 0.01),
    harness=StepCost(0.05, 0.005),
)
HONEST = ClockReading(
    window_ms=1.30,
    own_ms=0.98,
    ship_ms=2.1,
    stage_ms=3.05,
    flush_ms=0.11,
    probe_ms=0.021,
    key_ms=0.41,
    commit_ms=0.36,
)


def _timed(window_ms: float, own_ms: float) -> ClockReading:
    """A timed call with only its window and the runner's figure (every step free)."""
    return ClockReading(window_ms=window_ms, own_ms=own_ms, ship_ms=0.0)


def _check(reading: ClockReading, device: str = "cuda") -> TimingResult:
    result = TimingResult(calibration=TRUSTED)
    result.check_clock([reading] * 12, device)
    return result


def test_honest_figures_pass_and_every_step_is_reported():
    summary = _check(HONEST).clock_summary
    for step in ("stage", "key", "flush", "probe", "commit", "ship"):
        assert summary[f"{step}_median_ms"] == getattr(HONEST, f"{step}_ms")
        assert summary[f"trusted_{step}_ms"] == getattr(TRUSTED, step).median_ms


@pytest.mark.parametrize(
    "step, slow_ms, words",
    [
        ("stage", 4.5, "staging the inputs"),  # bound: 3.0 × 1.15 + 0.3 + 0.4 = 4.15
        ("flush", 0.40, "the oracle's L2 flush"),  # bound: 0.1 × 1.25 + 0.1 + 0.02 = 0.245
        ("probe", 0.20, "the oracle's probe kernel"),  # bound: 0.02 × 1.25 + 0.1 + 0.008 = 0.133
        ("ship", 3.2, "shipping the outputs"),  # bound: 2.0 × 1.15 + 0.3 + 0.4 = 3.0
        ("key", 0.70, "unmasking the inputs"),  # bound: 0.4 × 1.25 + 0.1 + 0.04 = 0.64
        ("commit", 0.62, "the digest of the outputs"),  # bound: 0.35 × 1.25 + 0.1 + 0.04 = 0.5775
    ],
)
def test_a_slow_step_around_the_window_is_a_timer_mismatch(step, slow_ms, words):
    reading = ClockReading(**(vars(HONEST) | {f"{step}_ms": slow_ms}))
    with pytest.raises(AttemptFailed) as caught:
        _check(reading)
    verdict = caught.value.verdict
    assert verdict.status == "rejected" and verdict.rule == "timer_mismatch"
    assert verdict.reason.startswith(words), verdict.reason


def test_a_step_just_inside_its_bound_passes():
    _check(
        ClockReading(
            **(vars(HONEST) | {"stage_ms": 4.1, "flush_ms": 0.24, "probe_ms": 0.13, "ship_ms": 2.95})
        )
    )


def test_the_interpreter_bounds_forgive_scheduler_noise_not_forgeries():
    noisy = ClockReading(**(vars(HONEST) | {"stage_ms": 60.0, "flush_ms": 30.0}))
    _check(noisy, device="cpu")  # 200% + 60 ms: a loaded CI machine stays inside
    with pytest.raises(AttemptFailed):
        _check(ClockReading(**(vars(HONEST) | {"stage_ms": 900.0})), device="cpu")


def test_a_runner_figure_below_the_outside_figure_is_a_timer_mismatch():
    with pytest.raises(AttemptFailed) as caught:
        _check(ClockReading(**(vars(HONEST) | {"own_ms": 0.5})))
    assert "measured from outside" in caught.value.verdict.reason


def test_the_reported_time_leaves_out_the_harness_and_never_reaches_zero():
    from types import SimpleNamespace

    from kernelscale.verify.verdict import Verdict

    result = _check(HONEST)
    result.add_call(HONEST)
    options = SimpleNamespace(known_baselines={})
    verdict = Verdict("correct", "")
    result.fill(verdict, SimpleNamespace(device="cpu"), None, options)
    assert verdict.time_ms == pytest.approx(HONEST.own_ms - TRUSTED.harness.median_ms)
    assert verdict.time_stats["harness_ms"] == TRUSTED.harness.median_ms
    tiny = TimingResult(calibration=TRUSTED)
    tiny.add_call(_timed(0.3, 0.01))
    tiny.fill(verdict, SimpleNamespace(device="cpu"), None, options)
    assert verdict.time_ms > 0


def test_timing_stops_once_the_median_is_pinned_down_not_on_outliers():
    """A few slow calls (a context switch) must not hold timing open to the cap: the stop rule
    looks at the median's interval, where a standard error of the mean would not settle."""
    import time

    from kernelscale.verify import timing
    from kernelscale.verify.options import VerifyOptions

    options = VerifyOptions()
    steady = [0.200 + 0.0005 * (i % 3) for i in range(20)]
    steady[3] = steady[11] = 2.5  # two stalls of 12x
    assert timing.relative_standard_error(steady) > options.target_spread
    assert timing.median_spread(steady) < options.target_spread
    result = TimingResult(calibration=TRUSTED)
    for ms in steady[:19]:
        result.add_call(_timed(ms + 0.3, ms))
    assert not result.enough(options, "cuda", time.monotonic())  # fewer than 2 rounds
    result.add_call(_timed(steady[19] + 0.3, steady[19]))
    assert result.enough(options, "cuda", time.monotonic())


def test_noisy_calls_run_to_the_call_cap_or_the_time_cap():
    import random
    import time

    from kernelscale.verify import timing
    from kernelscale.verify.options import VerifyOptions

    options = VerifyOptions()
    rng = random.Random(7)
    noisy = TimingResult(calibration=TRUSTED)
    for _ in range(options.max_calls - 1):
        noisy.add_call(_timed(1.0, rng.uniform(0.1, 0.3)))
    assert timing.median_spread(noisy.own_ms) > options.target_spread
    assert not noisy.enough(options, "cuda", time.monotonic())
    assert noisy.enough(options, "cuda", time.monotonic() - options.max_timing_s - 1)
    noisy.add_call(_timed(1.0, 0.2))
    assert noisy.enough(options, "cuda", time.monotonic())
    assert timing.median_spread([1.0] * 5) == float("inf")  # too few calls to say


def test_forgery_aimed_only_at_the_timed_calls_is_a_timer_mismatch():
    """Honest figures on the trials, which outnumber a short timing run, and forged ones on the
    timed calls: every median over all calls is honest, the reported median is not."""
    forged = ClockReading(**(vars(HONEST) | {"own_ms": 0.1}))
    assert _finding_when_only_timed(forged).startswith("timed calls: the candidate's process reported")
    moved = ClockReading(**(vars(HONEST) | {"key_ms": 0.9, "window_ms": 0.35, "own_ms": 0.01}))
    assert _finding_when_only_timed(moved).startswith("timed calls: unmasking the inputs")


def _finding_when_only_timed(reading: ClockReading) -> str:
    """The timer rule's reason for ten honest calls followed by three timed ones like `reading`."""
    result = TimingResult(calibration=TRUSTED)
    for _ in range(3):
        result.add_call(reading)
    with pytest.raises(AttemptFailed) as caught:
        result.check_clock([HONEST] * 10 + [reading] * 3, "cuda")
    return caught.value.verdict.reason


def test_a_time_that_is_not_a_number_is_never_reported():
    from types import SimpleNamespace

    from kernelscale.verify.verdict import Verdict

    result = TimingResult(calibration=TRUSTED)
    result.add_call(_timed(1.0, float("nan")))
    with pytest.raises(AttemptFailed) as caught:
        result.fill(Verdict("correct", ""), SimpleNamespace(device="cpu"), None, SimpleNamespace())
    assert caught.value.verdict.rule == "timer_mismatch"


def test_one_stalled_step_among_two_timed_calls_is_noise_two_are_a_finding():
    """The CPU times two calls: a median of two is their mean, and one stall (a loaded machine)
    would make it a finding. The timed calls' rule takes the middle value in the candidate's
    favour; a step slow on both calls is still caught."""
    stalled = ClockReading(**(vars(HONEST) | {"ship_ms": 400.0}))
    result = TimingResult(calibration=TRUSTED)
    result.add_call(HONEST)
    result.add_call(stalled)
    result.check_clock([HONEST] * 10 + [stalled], "cpu")
    both = TimingResult(calibration=TRUSTED)
    both.add_call(stalled)
    both.add_call(stalled)
    with pytest.raises(AttemptFailed) as caught:
        both.check_clock([HONEST] * 10 + [stalled], "cpu")
    assert caught.value.verdict.reason.startswith("timed calls: shipping the outputs")


def test_a_runner_figure_below_its_window_counts_only_down_to_the_handshake_noise():
    """A forged figure 10% under the outside one passes the rule (its slack), but the reported
    time counts each call at least its outside figure less three handshake spreads (a third
    red-team pass reported half its work this way)."""
    from types import SimpleNamespace

    from kernelscale.verify.verdict import Verdict

    outside = 10.0  # window 10.3 less the trusted handshake 0.3
    low = ClockReading(**(vars(HONEST) | {"window_ms": 10.3, "own_ms": 0.91 * outside}))
    result = _check(low)  # within the rule's slack: no finding
    result.add_call(low)
    verdict = Verdict("correct", "")
    result.fill(verdict, SimpleNamespace(device="cpu"), None, SimpleNamespace(known_baselines={}))
    floor = outside - 3 * TRUSTED.handshake.spread_ms
    assert verdict.time_ms == pytest.approx(floor - TRUSTED.harness.median_ms)
