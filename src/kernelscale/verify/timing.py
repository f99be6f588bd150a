"""One timing method for candidates and baselines alike (L2 flushed, synchronized, an event pair per call).

Per call: fresh cloned inputs prepared outside the timed region, the L2 flushed by a write of
at least twice its size, a CUDA event pair around the call with a device-wide synchronize
before the end event (work on other streams cannot escape it), and the host wall time of the
same interval as a cross-check. On the CPU only the host clock exists, and the numbers are
interpreter times, not performance numbers.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from kernelscale.verify.inputs import clone_inputs, outputs_as_list, poison


@dataclass
class Samples:
    event_ms: list[float] = field(default_factory=list)
    wall_ms: list[float] = field(default_factory=list)

    def extend(self, other: Samples) -> None:
        self.event_ms += other.event_ms
        self.wall_ms += other.wall_ms

    def to_json(self) -> dict:
        return {"event_ms": self.event_ms, "wall_ms": self.wall_ms}

    @staticmethod
    def from_json(data: dict) -> Samples:
        return Samples(list(map(float, data["event_ms"])), list(map(float, data["wall_ms"])))


def l2_flush_buffer(device: str) -> torch.Tensor | None:
    if device != "cuda":
        return None
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    l2 = getattr(props, "L2_cache_size", 0) or 64 * 2**20
    return torch.empty(max(2 * l2, 256 * 2**20) // 4, dtype=torch.int32, device="cuda")


def time_block(
    fn: Callable, inputs: list[Any], calls: int, device: str, flush: torch.Tensor | None
) -> Samples:
    """Time `calls` calls of fn on fresh clones of `inputs`."""
    samples = Samples()
    for _ in range(calls):
        args = clone_inputs(inputs)
        if device == "cuda":
            event, wall = _time_cuda_call(fn, args, flush)
        else:
            event, wall = _time_host_call(fn, args)
        samples.event_ms.append(event)
        samples.wall_ms.append(wall)
    return samples


def time_rounds(
    fn: Callable,
    inputs: list[Any],
    device: str,
    flush: torch.Tensor | None,
    calls: int,
    round_calls: int,
    target_spread: float,
    deadline: float,
) -> Samples:
    """Blocks of `round_calls` timed calls (at least one) until `calls` are in, the median is
    pinned within `target_spread`, or `deadline` (monotonic) has passed. On the CPU one block of
    `calls`: interpreter times are not performance numbers."""
    samples = Samples()
    while True:
        samples.extend(time_block(fn, inputs, round_calls if device == "cuda" else calls, device, flush))
        n = len(samples.event_ms)
        if device != "cuda" or n >= calls or time.monotonic() > deadline:
            return samples
        if n >= round_calls and median_spread(samples.event_ms) < target_spread:
            return samples


def _time_cuda_call(fn: Callable, args: list[Any], flush: torch.Tensor | None) -> tuple[float, float]:
    if flush is not None:
        flush.zero_()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    wall0 = time.perf_counter()
    start.record()
    out = fn(*args)
    torch.cuda.synchronize()
    end.record()
    end.synchronize()
    wall = (time.perf_counter() - wall0) * 1e3
    poison(outputs_as_list(out) + args)
    return start.elapsed_time(end), wall


def _time_host_call(fn: Callable, args: list[Any]) -> tuple[float, float]:
    wall0 = time.perf_counter()
    out = fn(*args)
    wall = (time.perf_counter() - wall0) * 1e3
    poison(outputs_as_list(out))
    return wall, wall


def warm_up(fn: Callable, inputs: list[Any], device: str, seconds: float = 0.2, max_calls: int = 25) -> None:
    """A few calls (compile, autotune, clocks) before anything is timed."""
    deadline = time.perf_counter() + seconds
    for i in range(max_calls):
        out = fn(*clone_inputs(inputs))
        if device == "cuda":
            torch.cuda.synchronize()
        del out
        if i >= 2 and time.perf_counter() > deadline:
            break


def relative_standard_error(values: list[float]) -> float:
    if len(values) < 2:
        return math.inf
    mean = statistics.fmean(values)
    return statistics.stdev(values) / math.sqrt(len(values)) / mean if mean > 0 else math.inf


def median_spread(values: list[float]) -> float:
    """Half the width of a distribution-free ~95% interval for the median, over the median.

    The interval runs between the order statistics n/2 -/+ 0.98 sqrt(n) (the binomial bound),
    so a few slow calls (a context switch, a clock step) do not hold timing open the way they
    inflate a standard error of the mean."""
    n = len(values)
    if n < 6:
        return math.inf
    ordered = sorted(values)
    half = 0.98 * math.sqrt(n)
    lo, hi = ordered[max(0, math.floor(n / 2 - half))], ordered[min(n - 1, math.ceil(n / 2 + half))]
    median = statistics.median(ordered)
    return (hi - lo) / 2 / median if median > 0 else math.inf


def summarize(samples: Samples) -> dict:
    ev = samples.event_ms
    return {
        "n": len(ev),
        "median_ms": statistics.median(ev),
        "mean_ms": statistics.fmean(ev),
        "min_ms": min(ev),
        "rse": relative_standard_error(ev),
        "median_spread": median_spread(ev),
        "wall_median_ms": statistics.median(samples.wall_ms),
    }


def timer_consistency(samples: Samples) -> str | None:
    """Why the event times cannot be right, or None. An event interval lies inside the host
    interval measured around it, so it can never be much longer."""
    for event, wall in zip(samples.event_ms, samples.wall_ms):
        if event > wall * 1.05 + 0.05:
            return f"event time {event:.4f} ms exceeds the host wall time {wall:.4f} ms around it"
    return None


class Stopwatch:
    """Adds the seconds since the previous lap to `into[name]`: the verifier's own cost, split
    into parts (a call's exchange, a calibration, a problem's load) for a verdict."""

    def __init__(self, into: dict[str, float]):
        self.into, self.last = into, time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.into[name] = self.into.get(name, 0.0) + now - self.last
        self.last = now


def rounded(parts: dict[str, float]) -> dict[str, float]:
    return {name: round(seconds, 3) for name, seconds in parts.items()}
