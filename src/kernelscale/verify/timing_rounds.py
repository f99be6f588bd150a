"""Interleaved timing: candidate (in its process) and baselines (here) take turns on the GPU.

Rounds alternate so clock or thermal drift over the measurement cannot favour either side. The
oracle also times each candidate block from outside: the sum of the event times the runner
reports must fit in the wall time the oracle saw, which a forged timer cannot arrange.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kernelscale.verify import timing
from kernelscale.verify.inputs import make_inputs, tensor_bytes
from kernelscale.verify.oracle import TIMING_INIT_SEED
from kernelscale.verify.replies import AttemptFailed, expect
from kernelscale.verify.verdict import Verdict


@dataclass
class TimingResult:
    candidate: timing.Samples
    baselines: dict[str, timing.Samples] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    nbytes: int = 0

    def fill(self, verdict: Verdict, oracle, loaded, options) -> None:
        stats = timing.summarize(self.candidate)
        verdict.time_ms = stats["median_ms"]
        verdict.time_stats = stats | {"baseline_notes": self.notes}
        verdict.baselines = {name: timing.summarize(s)["median_ms"] for name, s in self.baselines.items() if s.event_ms}
        if oracle.device != "cuda":
            return  # interpreter times are not performance numbers: no speedup is claimed
        verdict.speedup = {name: ms / verdict.time_ms for name, ms in verdict.baselines.items() if verdict.time_ms > 0}
        # Suspicion is about beating every known implementation: a fused kernel 30x faster than
        # an fp32 eager reference is ordinary, 10x faster than the best baseline is not.
        strongest = min(verdict.speedup, key=verdict.speedup.get) if verdict.speedup else None
        reasons = [f"{verdict.speedup[strongest]:.1f}x over {strongest}, the strongest baseline"] if (
            strongest and verdict.speedup[strongest] > options.suspect_speedup) else []
        floor = oracle.roofline.floor_ms(loaded.problem.flops, self.nbytes) if oracle.roofline else 0.0
        verdict.time_stats["roofline_floor_ms"] = floor
        if verdict.time_ms < 0.9 * floor:
            reasons.append(f"{verdict.time_ms:.4f} ms is below the roofline floor {floor:.4f} ms")
        if reasons:
            verdict.suspect = True
            verdict.suspect_reason = "; ".join(reasons)


def time_interleaved(oracle, loaded, child, options, deadline: float) -> TimingResult:
    device = oracle.device
    inputs = make_inputs(loaded.module, loaded.timing_seed, 1.0, device)
    result = TimingResult(candidate=timing.Samples(), notes=dict(loaded.baselines.notes))
    result.nbytes = tensor_bytes(inputs) + loaded.output_bytes
    live = dict(loaded.baselines.callables)
    flush = timing.l2_flush_buffer(device)
    calls = options.round_calls if device == "cuda" else options.cpu_calls
    started = time.monotonic()
    for round_index in range(10_000):
        request = {"op": "time", "seed": loaded.timing_seed, "init_seed": TIMING_INIT_SEED,
                   "calls": calls, "warmup": round_index == 0}
        sent = time.monotonic()
        block = timing.Samples.from_json(expect(child.request(request, deadline))["samples"])
        outside_ms = (time.monotonic() - sent) * 1e3
        if sum(block.event_ms) > outside_ms * 1.05 + 1.0:
            raise AttemptFailed(Verdict("rejected", f"reported {sum(block.event_ms):.2f} ms of kernel time in a "
                                        f"{outside_ms:.2f} ms window", rule="timer_mismatch"))
        problem = timing.timer_consistency(block)
        if problem:
            raise AttemptFailed(Verdict("rejected", problem, rule="timer_mismatch"))
        result.candidate.extend(block)
        _time_baselines(live, result, inputs, calls, device, flush, warm=round_index == 0)
        if _enough(result, options, device, started):
            break
    return result


def _time_baselines(live: dict, result: TimingResult, inputs, calls, device, flush, warm: bool) -> None:
    for name in list(live):
        fn = live[name]
        try:
            if warm:
                timing.warm_up(fn, inputs, device)
            result.baselines.setdefault(name, timing.Samples()).extend(
                timing.time_block(fn, inputs, calls, device, flush))
        except Exception as exc:  # a broken baseline is noted, never blamed on the candidate
            result.notes[name] = f"failed while timing: {type(exc).__name__}: {str(exc)[:160]}"
            result.baselines.pop(name, None)
            live.pop(name)


def _enough(result: TimingResult, options, device: str, started: float) -> bool:
    if device != "cuda":
        return True
    n = len(result.candidate.event_ms)
    if n >= options.min_calls or time.monotonic() - started > options.max_timing_s:
        return True
    settled = [timing.relative_standard_error(s.event_ms) < options.target_rse
               for s in [result.candidate, *result.baselines.values()]]
    return n >= 2 * options.round_calls and all(settled)

