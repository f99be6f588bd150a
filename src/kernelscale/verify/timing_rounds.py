"""Times from the oracle's side: the candidate's calls, the baselines, and the rule joining them.

A candidate call is timed from the oracle's process (the window from sending `go` to reading
the reply), less the handshake-and-shipping cost measured with a trusted runner in the same
sandbox. The runner's own CUDA-event figure may refine that number, never undercut it: a median
below the outside figure by more than a small bound is `rejected: timer_mismatch`.

Baselines are timed here, in the oracle, by the same per-call method (L2 flushed, device-wide
synchronize, event pair) before the candidate's process starts and after it is killed, so no
process of the candidate's is alive while they run and drift over the attempt hits both halves.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from kernelscale.verify import timing
from kernelscale.verify.inputs import make_inputs, tensor_bytes
from kernelscale.verify.replies import AttemptFailed
from kernelscale.verify.verdict import Verdict

# The runner's own figure may sit below the oracle's outside figure by at most this much.
OWN_TIME_SLACK = 0.10  # relative
OWN_TIME_SLACK_MS = 0.02  # absolute: the jitter of one pipe round trip
CPU_OWN_TIME_SLACK = 0.50  # the interpreter on a shared CPU: only a gross forgery is a finding


@dataclass
class TimingResult:
    window_ms: list[float] = field(default_factory=list)
    own_ms: list[float] = field(default_factory=list)
    overhead_ms: float = 0.0
    baselines: dict[str, timing.Samples] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    nbytes: int = 0

    def add_call(self, window_ms: float, own_ms: float) -> None:
        self.window_ms.append(window_ms)
        self.own_ms.append(own_ms)

    def outside_ms(self) -> list[float]:
        return [max(0.0, w - self.overhead_ms) for w in self.window_ms]

    def enough(self, options, device: str, started: float) -> bool:
        n = len(self.own_ms)
        if device != "cuda":
            return n >= options.cpu_calls
        if n >= options.min_calls or time.monotonic() - started > options.max_timing_s:
            return True
        return (
            n >= 2 * options.round_calls and timing.relative_standard_error(self.own_ms) < options.target_rse
        )

    def check_own_times(self, clock: list[tuple[float, float]], device: str) -> None:
        """The runner's figure must agree with the oracle's, over every call after the first
        two (compile, autotune): never longer than the window around it, never shorter than
        the outside figure by more than the slack (wider under the CPU interpreter)."""
        calls = clock[2:] or clock
        if not calls:
            return
        own = statistics.median(o for _, o in calls)
        window = statistics.median(w for w, _ in calls)
        outside = statistics.median(max(0.0, w - self.overhead_ms) for w, _ in calls)
        if own > window * 1.05 + 0.05:
            raise AttemptFailed(
                Verdict(
                    "rejected",
                    f"the runner reported {own:.4f} ms per call inside a {window:.4f} ms window",
                    rule="timer_mismatch",
                )
            )
        slack = OWN_TIME_SLACK if device == "cuda" else CPU_OWN_TIME_SLACK
        if own < outside * (1 - slack) - OWN_TIME_SLACK_MS:
            raise AttemptFailed(
                Verdict(
                    "rejected",
                    f"the candidate's process reported {own:.4f} ms per call; "
                    f"measured from outside it took {outside:.4f} ms",
                    rule="timer_mismatch",
                )
            )

    def fill(self, verdict: Verdict, oracle, loaded, options) -> None:
        verdict.time_ms = statistics.median(self.own_ms)
        stats = timing.summarize(timing.Samples(self.own_ms, self.window_ms))
        verdict.time_stats = stats | {
            "outside_median_ms": statistics.median(self.outside_ms()),
            "handshake_ms": self.overhead_ms,
            "baseline_notes": self.notes,
        }
        verdict.baselines = {
            name: timing.summarize(s)["median_ms"] for name, s in self.baselines.items() if s.event_ms
        }
        if oracle.device != "cuda":
            return  # interpreter times are not performance numbers: no speedup is claimed
        verdict.speedup = {
            name: ms / verdict.time_ms for name, ms in verdict.baselines.items() if verdict.time_ms > 0
        }
        _flag_suspect(verdict, oracle, loaded, options, self.nbytes)


def _flag_suspect(verdict: Verdict, oracle, loaded, options, nbytes: int) -> None:
    # Suspicion is about beating every known implementation: a fused kernel 30x faster than
    # an fp32 eager reference is ordinary, 10x faster than the best baseline is not.
    strongest = min(verdict.speedup, key=verdict.speedup.get) if verdict.speedup else None
    reasons = (
        [f"{verdict.speedup[strongest]:.1f}x over {strongest}, the strongest baseline"]
        if (strongest and verdict.speedup[strongest] > options.suspect_speedup)
        else []
    )
    floor = oracle.roofline.floor_ms(loaded.problem.flops, nbytes) if oracle.roofline else 0.0
    verdict.time_stats["roofline_floor_ms"] = floor
    if verdict.time_ms < 0.9 * floor:
        reasons.append(f"{verdict.time_ms:.4f} ms is below the roofline floor {floor:.4f} ms")
    if reasons:
        verdict.suspect = True
        verdict.suspect_reason = "; ".join(reasons)


def time_baselines(oracle, loaded, options, result: TimingResult, warm: bool) -> None:
    """One half of the baselines' calls; called only while no candidate process is alive."""
    device = oracle.device
    inputs = make_inputs(loaded.module, loaded.timing_seed, 1.0, device)
    result.nbytes = tensor_bytes(inputs) + loaded.output_bytes
    flush = timing.l2_flush_buffer(device)
    calls = max(1, options.min_calls // 2) if device == "cuda" else options.cpu_calls
    started = time.monotonic()
    for name, fn in loaded.baselines.callables.items():
        if name in result.notes and name not in result.baselines:
            continue  # failed in the first half
        try:
            if warm:
                timing.warm_up(fn, inputs, device)
            samples = result.baselines.setdefault(name, timing.Samples())
            first = len(samples.event_ms)
            while True:
                samples.extend(
                    timing.time_block(
                        fn, inputs, options.round_calls if device == "cuda" else calls, device, flush
                    )
                )
                if device != "cuda" or _baseline_settled(samples, first + calls, options, started):
                    break
        except Exception as exc:  # a broken baseline is noted, never blamed on the candidate
            result.notes[name] = f"failed while timing: {type(exc).__name__}: {str(exc)[:160]}"
            result.baselines.pop(name, None)
    del flush


def _baseline_settled(samples: timing.Samples, target: int, options, started: float) -> bool:
    n = len(samples.event_ms)
    if n >= target or time.monotonic() - started > options.max_timing_s / 2:
        return True
    return n >= options.round_calls and timing.relative_standard_error(samples.event_ms) < options.target_rse
