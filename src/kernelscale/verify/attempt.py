"""One attempt, end to end, from the oracle's side.

baselines (first half, no candidate alive) → start the candidate → correctness trials (fresh
draws, a rescaled set, shifted distributions; the first one candidate → reference → candidate)
→ timed calls, each on an input set never seen before and each checked → one more checked call
→ kill the candidate's process tree → baselines (second half) → verdict. Every call is the same
call; any failure ends the attempt with its status, and an error in a check is never a pass.
Baselines that compile build in processes of their own from the problem's first attempt on
(baseline_process.py), stopped whenever something is timed; while one is still building the
first half is skipped and every baseline is timed after the kill, and one still building then
is left to a later attempt: a verdict waits for a compile only when asked (a run's last ones).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from kernelscale.problems.problem import Problem
from kernelscale.verify.calibration import calibrate, needs_measuring
from kernelscale.verify.candidate import CallResult, CandidateProcess, attempt_dir
from kernelscale.verify.cleanup import remove_tree
from kernelscale.verify.compare import atol_scales, compare_outputs, output_rms
from kernelscale.verify.options import VerifyOptions
from kernelscale.verify.replies import AttemptFailed
from kernelscale.verify.sandbox import ChildGone, ChildTimeout
from kernelscale.verify.timing import rounded
from kernelscale.verify.timing_rounds import TimingResult, time_baselines
from kernelscale.verify.trials import Case, correctness_plan, fresh_seed, own_trial, timed_call_name
from kernelscale.verify.verdict import Verdict


@dataclass
class Errors:
    """The worst errors over every checked call, for the verdict."""

    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    calls_checked: int = 0
    tolerance: float = 0.0
    inexact: bool = False  # some output is compared with a tolerance (floating or complex)
    notes: list[str] = field(default_factory=list)


def run_attempt(oracle, problem: Problem, code: str, options: VerifyOptions) -> Verdict:
    started = time.monotonic()
    fresh = problem.content_hash() not in oracle.problems
    loaded = oracle.load(problem)
    loaded_at = time.monotonic()
    # A runner started ahead (spare.py) has finished its imports once it is taken, before
    # anything here is timed; without one the candidate's runner starts in `_verify`.
    spare = oracle.spares.take(loaded, options.memory_limit_gb) if oracle.spares else None
    waited = {"load": round(loaded_at - started, 3), "runner_wait": round(time.monotonic() - loaded_at, 3)}
    if fresh:
        waited["load_parts"] = loaded.load_s
    if spare is not None and id(spare) in oracle.spares.warm_s:
        waited["runner_warm"] = oracle.spares.warm_s.pop(id(spare))
    candidate = spare or CandidateProcess(oracle, loaded, attempt_dir(oracle), options.memory_limit_gb)
    workdir = candidate.workdir
    timing = TimingResult()
    try:
        verdict = _verify(oracle, loaded, candidate, code, options, timing)
    except AttemptFailed as failed:
        verdict = failed.verdict
    except ChildTimeout:
        verdict = Verdict(
            "timeout", f"no result within {options.timeout_s:g} s (compile and run); process tree killed"
        )
    except ChildGone as gone:
        verdict = Verdict("runtime_error", f"candidate process {gone}")
    except (torch.OutOfMemoryError, MemoryError) as exc:
        if not candidate.holds_candidate:
            raise  # no candidate alive: the verifier's own shortage (a verifier error)
        verdict = _memory_held(exc)
    finally:
        tail = candidate.log_tail()
        candidate.kill()
        remove_tree(workdir)
    if not verdict.log_tail and verdict.status not in ("correct", "rejected"):
        verdict.log_tail = tail
    verdict.device = oracle.environment
    verdict.isolation = candidate.isolation
    verdict.interpreted = oracle.device != "cuda"
    verdict.cost_s = {**waited, **verdict.cost_s, "total": round(time.monotonic() - started, 3)}
    return verdict


def _memory_held(exc: BaseException) -> Verdict:
    """Out of memory in the oracle while the candidate's process lives: its doing, not a verifier
    fault. The oracle's own needs at this problem's sizes were met before the candidate started
    (the reference, the baselines, the calibration), and the candidate can hold any amount of
    device memory (no limit holds it across processes) to make the oracle's next allocation fail,
    which as a verifier error would be retried elsewhere and then stop the search."""
    detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return Verdict(
        "runtime_error",
        f"the verifier ran out of memory while the candidate's process held memory ({detail}); "
        "a kernel must not hold more memory than its call needs",
    )


def _set_up(oracle, loaded, options, cost: dict) -> bool:
    """The timing model and baselines built, the warm-ups over; will a calibration be measured?"""
    t0 = time.monotonic()
    oracle.timing_setup(loaded)
    warmed = oracle.wait_warm()
    if warmed:  # the first attempt of this oracle: it also paid the oracle's start-up steps
        cost["masking_warm"] = warmed
        if oracle.start_s:
            cost["oracle_start"] = dict(oracle.start_s)
    measuring = needs_measuring(loaded, options)
    if oracle.spares and measuring:
        oracle.spares.settle()  # the calibration's runner: its imports end before any timing
    elif oracle.spares:
        oracle.spares.discard()  # no calibration to run: nothing may import while we time
    cost["setup"] = round(time.monotonic() - t0, 3)
    return measuring


def _verify(oracle, loaded, candidate: CandidateProcess, code: str, options, timing: TimingResult) -> Verdict:
    # Setup (the reference and baselines built) and calibration are paid once per problem in an
    # oracle, baselines once per problem and device when the store has them: split out so that
    # what every attempt costs can be read apart from what the first one pays.
    cost: dict[str, float] = {}
    measuring = _set_up(oracle, loaded, options, cost)
    with oracle.builds_paused(loaded):  # builds run only while nothing is timed
        t0 = time.monotonic()
        time_baselines(oracle, loaded, options, timing, before_candidate=True)
        cost["baselines"] = round(time.monotonic() - t0, 3)
        t0 = time.monotonic()
        timing.calibration = calibrate(oracle, loaded, options)
        cost["calibration"] = round(time.monotonic() - t0, 3)
        if measuring:
            cost["calibration_parts"] = timing.calibration.measured_s
    reference = oracle.new_reference(loaded, candidate.exchange)
    waited = candidate.hold_host()  # before the deadline: another oracle's measurement, not ours
    if waited > 0.01:
        cost["host_hold_wait"] = round(waited, 3)
    deadline = time.monotonic() + options.timeout_s
    cost["process_start"] = round(
        candidate.start(code, reference.init_message, reference.init_seed, deadline), 3
    )
    errors = Errors()
    t1 = time.monotonic()
    cost["first_call"] = _correctness(oracle, loaded, candidate, reference, options, deadline, errors)
    cost["correctness"] = round(time.monotonic() - t1, 3)  # the first call (compile) included
    if options.wait_for_builds:
        t2 = time.monotonic()
        oracle.wait_for_builds(loaded)
        cost["baselines_wait"] = round(time.monotonic() - t2, 3)
    with oracle.builds_paused(loaded):
        t2 = time.monotonic()
        cost["timing_parts"] = _timed_calls(
            oracle, loaded, candidate, reference, options, deadline, errors, timing
        )
        candidate.check_guards(deadline)
        cost["timing"] = round(time.monotonic() - t2, 3)
        candidate.kill()
        timing.check_clock(candidate.clock, oracle.device)
        t3 = time.monotonic()
        time_baselines(oracle, loaded, options, timing, before_candidate=False)
        cost["baselines_after"] = round(time.monotonic() - t3, 3)
    verdict = Verdict(
        "correct",
        f"{errors.calls_checked} calls checked, every one within atol=rtol={errors.tolerance:g}"
        if errors.inexact
        else f"{errors.calls_checked} calls checked, every output exactly equal to the reference's",
        max_abs_error=errors.max_abs_error,
        max_rel_error=errors.max_rel_error,
    )
    timing.fill(verdict, oracle, loaded, options)
    verdict.time_stats["calls_checked"] = errors.calls_checked
    verdict.time_stats["pinned_slabs"] = candidate.pinned_slabs
    verdict.time_stats["stored_calibration"] = timing.calibration.stored
    if not timing.calibration.stored and timing.calibration.quiet:
        verdict.calibration = timing.calibration.to_json()  # the search stores it for later runs
    verdict.cost_s = cost
    return verdict


def _correctness(oracle, loaded, candidate, reference, options, deadline, errors: Errors) -> float:
    """The trials; returns the seconds of the candidate's first call (its compile, its cost)."""
    first_call_s = 0.0
    plan = correctness_plan(
        options.trials,
        loaded.problem.input_scale or options.input_scale,
        loaded.problem.edge_shifts,
        loaded.input_rank,
        own_trial(loaded.module),
    )
    plain_rms: list[float] = []  # of each reference output on the first plain trial
    for index, case in enumerate(plan):
        inputs = oracle.case_inputs(loaded, case)
        called = time.monotonic()
        first = candidate.call(inputs, deadline)  # the candidate runs before the reference exists
        if index == 0:
            first_call_s = round(time.monotonic() - called, 3)
        want = oracle.reference_outputs(reference, inputs)
        if not plain_rms and case.shift == "plain":
            plain_rms = output_rms(want)
        # atol was set for plain draws; a shifted output's honest rounding error grows with it
        scales = atol_scales(want, plain_rms)
        _check(loaded, case.name, inputs, first, want, errors, scales)
        if index == 0:
            # Drawn again: a reference that works in place (`x.mul_(2)`) has changed `inputs`,
            # and the second call must see what the first saw.
            again = candidate.call(oracle.case_inputs(loaded, case), deadline)
            _check(loaded, f"{case.name}, second call", inputs, again, want, errors, scales)
    candidate.check_guards(deadline)
    return first_call_s


def _timed_calls(oracle, loaded, candidate, reference, options, deadline, errors: Errors, timing) -> dict:
    """Every timed call has inputs never seen before and is checked; the last is a fresh check
    after timing. A warm-up call first (compile, autotune) is checked but not timed. Each next
    input set is drawn and staged before the reference of the call before it runs, and written
    into the slab while that reference keeps the GPU busy (the write is host work of ~50 ms for
    an attention problem's 200 MB). Returns the seconds the timed calls' loop spent per part
    (the verifier's own cost, read in a verdict)."""
    parts = {"inputs": 0.0, "call": 0.0, "reference": 0.0, "check": 0.0}
    index = 0
    warm_up = Case("warm-up call", fresh_seed())
    _call_and_check(
        oracle,
        loaded,
        candidate,
        reference,
        warm_up.name,
        oracle.case_inputs(loaded, warm_up),
        deadline,
        errors,
    )
    exchanged = dict(candidate.exchange_s)
    # The next call's inputs: named (a timed call, or the check after timing) when checked.
    inputs = oracle.case_inputs(loaded, Case("next", fresh_seed()))
    staged = candidate.prepare(inputs)
    # The clock of the timing budget starts here, after the warm-up: a warm-up that outlasted
    # the budget (an autotune, a stall: `stalls_its_warm_up`) left one timed call, read after
    # the GPU had idled, and a timer rule over one reading rejected it on a GPU.
    started = time.monotonic()
    while not timing.enough(options, oracle.device, started):
        t0 = time.monotonic()
        result = candidate.call(inputs, deadline, staged)
        timing.add_call(result.reading)
        t1 = time.monotonic()
        next_inputs = oracle.case_inputs(loaded, Case("next", fresh_seed()))
        staged = candidate.prepare(next_inputs)  # on the GPU: drawn, masked, copied to the host
        t2 = time.monotonic()
        staged.flush(background=True)  # written into the slab by a thread ...
        want = oracle.reference_outputs(reference, inputs)  # ... while the reference runs
        staged.flush()
        oracle.settle()  # the reference's GPU work lands in its own part, not in the check's
        t3 = time.monotonic()
        _check(loaded, timed_call_name(index), inputs, result, want, errors)
        t4 = time.monotonic()
        for name, seconds in zip(
            ("call", "inputs", "reference", "check"), (t1 - t0, t2 - t1, t3 - t2, t4 - t3)
        ):
            parts[name] += seconds
        inputs = next_inputs
        index += 1
    # the exchange's own parts over the timed calls, seen from here: most of "call", plus the
    # staging of the next set ("inputs") and its write into the slab (inside "reference")
    exchange = rounded({k: v - exchanged.get(k, 0.0) for k, v in candidate.exchange_s.items()})
    _call_and_check(oracle, loaded, candidate, reference, "after timing", inputs, deadline, errors, staged)
    return rounded(parts) | {
        "calls": index,
        "exchange": exchange,
    }


def _call_and_check(
    oracle, loaded, candidate, reference, trial, inputs, deadline, errors, staged=None
) -> None:
    """One untimed call, checked against the reference on the same inputs."""
    result = candidate.call(inputs, deadline, staged)
    _check(loaded, trial, inputs, result, oracle.reference_outputs(reference, inputs), errors)


def _check(
    loaded,
    trial: str,
    inputs: list,
    result: CallResult,
    want: list,
    errors: Errors,
    atol_scale: list[float] | None = None,
) -> None:
    """Timed calls pass no `atol_scale`: their inputs are plain draws, so atol applies as set."""
    if result.mutated_inputs:
        raise AttemptFailed(
            Verdict(
                "incorrect", f"modified its input(s) {result.mutated_inputs} in place", failing_trial=trial
            )
        )
    tol = loaded.problem.tolerance_for(_dominant_dtype(want, inputs))
    # Each floating output at its own dtype's tolerance: a bf16 output first must not lend its
    # 1e-2 to an fp32 output beside it (fp32_output_in_bf16), nor a bf16 input to a complex64
    # output, whose parts are fp32 (complex_output_in_bf16).
    inexact = [isinstance(w, torch.Tensor) and (w.is_floating_point() or w.is_complex()) for w in want]
    tols = [loaded.problem.tolerance_for(w.dtype.to_real()) if f else tol for w, f in zip(want, inexact)]
    mismatch, stats = compare_outputs(result.outputs, want, tols, atol_scale)
    errors.calls_checked += 1
    errors.tolerance = tol
    errors.inexact |= any(inexact)
    errors.max_abs_error = max(errors.max_abs_error, stats.get("max_abs_error") or 0.0)
    errors.max_rel_error = max(errors.max_rel_error, stats.get("max_rel_error") or 0.0)
    if mismatch is not None:
        raise AttemptFailed(
            Verdict(
                "incorrect",
                mismatch.reason,
                max_abs_error=mismatch.max_abs_error,
                max_rel_error=mismatch.max_rel_error,
                worst_index=mismatch.worst_index,
                failing_trial=trial,
            )
        )


def _dominant_dtype(outputs: list, inputs: list) -> torch.dtype:
    """The output's floating dtype decides the tolerance (bf16 output: bf16 tolerance); a
    complex one's is that of its parts (complex64: float32)."""
    for x in outputs + inputs:
        if isinstance(x, torch.Tensor) and (x.is_floating_point() or x.is_complex()):
            return x.dtype.to_real()
    return torch.float32
