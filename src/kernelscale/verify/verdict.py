"""The verifier's answer about one candidate, and the environment it was measured in."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field

STATUSES = ("compile_error", "runtime_error", "timeout", "rejected", "incorrect", "correct")
# How a runtime_error verdict starts when the verifier itself failed (the reference, a baseline):
# the search stops on it instead of blaming, and burning, candidate after candidate.
VERIFIER_ERROR = "verifier error (not the candidate's)"


@dataclass
class Verdict:
    status: str
    reason: str = ""
    rule: str | None = None  # for `rejected`: the rule broken (e.g. "torch_fallback")
    line: int | None = None  # for `rejected` / `compile_error`: where in the candidate
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    worst_index: list[int] | None = None
    failing_trial: str | None = None
    time_ms: float | None = None
    time_stats: dict = field(default_factory=dict)  # n, median, mean, rse, min, wall_check
    baselines: dict[str, float] = field(default_factory=dict)  # name -> ms
    speedup: dict[str, float] = field(default_factory=dict)  # name -> baseline_ms / time_ms
    suspect: bool = False
    suspect_reason: str = ""
    interpreted: bool = False  # CPU interpreter: times are not performance numbers
    device: dict = field(default_factory=dict)  # name, driver, torch, triton, cuda
    # the verifier's own wall-time split, seconds per step ("runner_warm": the runner's own steps)
    cost_s: dict[str, float | dict] = field(default_factory=dict)
    log_tail: str = ""
    cached: bool = False
    # The OS layers around the candidate's process (mechanism, layers, uid; docs/sandbox.md):
    # where a layer is missing the verdict says so rather than implying it.
    isolation: dict = field(default_factory=dict)
    # The trusted runner's step costs this attempt measured (Calibration.to_json), for the store;
    # empty where it reused stored ones or never got that far.
    calibration: dict = field(default_factory=dict)
    # Set only where the verifier itself failed (verifier_error): the pool retries such an
    # attempt elsewhere and the search stops on it. A flag, never the reason's words, which a
    # candidate writes too (an exception's message, its runner's reply).
    verifier_fault: bool = False

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown verdict status {self.status!r}")

    @property
    def ok(self) -> bool:
        return self.status == "correct"

    def to_json(self) -> dict:
        return asdict(self)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), default=str)

    @staticmethod
    def from_json(data: dict) -> Verdict:
        known = {k: v for k, v in data.items() if k in Verdict.__dataclass_fields__}
        return Verdict(**known)

    def headline(self) -> str:
        """One line for progress displays and feedback prompts."""
        if self.status == "correct":
            if self.interpreted or self.time_ms is None:
                return "correct (interpreted, not a performance number)"
            parts = [f"{self.time_ms:.4f} ms"]
            parts += [f"{v:.2f}x vs {k}" for k, v in self.speedup.items()]
            flag = " [suspect]" if self.suspect else ""
            return "correct: " + ", ".join(parts) + flag
        where = f" (line {self.line})" if self.line else ""
        rule = f"[{self.rule}] " if self.rule else ""
        return f"{self.status}: {rule}{self.reason}{where}"


def verifier_error(detail: str) -> Verdict:
    """The verdict when the verifier, not the candidate, failed (the reference, a baseline, a
    worker that died twice): the one place a verdict is marked so."""
    return Verdict("runtime_error", f"{VERIFIER_ERROR}: {detail}", verifier_fault=True)


def describe_environment(device: str) -> dict:
    """Versions that make a timing reproducible; read in the process that did the timing."""
    import torch

    info: dict = {"kind": device, "torch": torch.__version__, "python": platform.python_version()}
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    if device == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        info["name"] = props.name
        info["cuda"] = torch.version.cuda
        info["sm_count"] = props.multi_processor_count
        info["driver"] = _driver_version()
    else:
        info["name"] = platform.processor() or platform.machine()
    return info


def _driver_version() -> str | None:
    try:
        import ctypes

        lib = ctypes.CDLL("libcuda.so.1")
        version = ctypes.c_int()
        lib.cuDriverGetVersion(ctypes.byref(version))
        return f"{version.value // 1000}.{(version.value % 1000) // 10}"
    except OSError:
        return None
