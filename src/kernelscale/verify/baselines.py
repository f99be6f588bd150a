"""What a candidate is measured against, built once per problem in the oracle.

"eager" is the reference model, "compile" is `torch.compile` of it; any other name is asked of
the problem module (`make_baseline(name, model, init_inputs)`), which is how attention problems
add FlexAttention and SDPA. A baseline that cannot be built on this device is skipped with a
note rather than failing the attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

import torch

TIMING_INIT_SEED = 20250215  # the baselines' timing model: parameters do not change a time


@dataclass
class BaselineSet:
    callables: dict[str, Callable] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


def build_baselines(
    names: tuple[str, ...], module: ModuleType, model, init_inputs: list, device: str
) -> BaselineSet:
    found = BaselineSet()
    for name in names:
        try:
            fn = _build_one(name, module, model, init_inputs, device)
        except Exception as exc:  # a baseline's failure must not fail the candidate
            found.notes[name] = (
                f"not built: {type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
            )
            continue
        if fn is None:
            found.notes[name] = "not available for this problem or device"
        else:
            found.callables[name] = fn
    return found


def _build_one(name: str, module: ModuleType, model, init_inputs: list, device: str) -> Callable | None:
    if name == "eager":
        return model
    if name == "compile":
        if device != "cuda":
            return None  # Inductor's CPU path compiles C++ for minutes; no CPU timing is a claim anyway
        _raise_dynamo_limits()
        return torch.compile(model)
    maker = getattr(module, "make_baseline", None)
    return maker(name, model, init_inputs) if maker else None


def _raise_dynamo_limits() -> None:
    """Past the recompile limit dynamo silently runs an unfused path (30x slower for Flex)."""
    import torch._dynamo

    config = torch._dynamo.config
    for key in (
        "recompile_limit",
        "cache_size_limit",
        "accumulated_recompile_limit",
        "accumulated_cache_size_limit",
    ):
        if hasattr(config, key):
            setattr(config, key, max(getattr(config, key), 4096))


@dataclass
class Roofline:
    """Measured ceilings of this device: matrix rate and copy bandwidth."""

    tflops: float
    copy_gbps: float

    def floor_ms(self, flops: float | None, nbytes: int) -> float:
        compute = (flops or 0.0) / (self.tflops * 1e12) * 1e3
        memory = nbytes / (self.copy_gbps * 1e9) * 1e3
        return max(compute, memory)


def measure_roofline() -> Roofline:
    """bf16 8192³ product and a 1 GiB device copy, best of a few: generous ceilings, so a time
    under the floor they give is physically implausible rather than merely fast."""
    roofline = _measure(
        torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16),
        torch.empty(2**28, device="cuda", dtype=torch.float32),
    )
    torch.cuda.empty_cache()  # the buffers above are gone once _measure returns
    return roofline


def _measure(a: torch.Tensor, src: torch.Tensor) -> Roofline:
    dst = torch.empty_like(src)
    best_mm = min(_event_ms(lambda: a @ a) for _ in range(5))
    best_copy = min(_event_ms(lambda: dst.copy_(src)) for _ in range(5))
    return Roofline(
        tflops=2 * a.shape[0] ** 3 / (best_mm * 1e-3) / 1e12,
        copy_gbps=2 * src.numel() * src.element_size() / (best_copy * 1e-3) / 1e9,
    )


def _event_ms(fn: Callable) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end)
