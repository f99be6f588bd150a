"""Settings of one verification (the protocol's knobs; the defaults are its minimums)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class VerifyOptions:
    trials: int = 5  # correctness trials before timing (at least 5 are always run)
    input_scale: float = 3.0  # the rescaled-input trial multiplies floating inputs by this
    timeout_s: float = 300.0  # wall clock for the whole attempt in the candidate's process
    min_calls: int = 100  # timed calls, unless the relative standard error is under `target_rse` first
    target_rse: float = 0.01
    round_calls: int = 10  # calls per interleaved round (candidate, then each baseline)
    max_timing_s: float = 30.0
    cpu_calls: int = 2  # interpreted timing on the CPU: a few calls, not a performance number
    suspect_speedup: float = 10.0
    screen: bool = True  # only tests turn this off, to prove the sandbox stands without it
    memory_limit_gb: float | None = None  # address-space cap for the candidate on the CPU
    # Baseline medians (name -> ms) already measured for this problem on this device and these
    # versions by an earlier run: the oracle neither builds (compiles) nor times them again.
    known_baselines: dict[str, float] | None = None

    def __post_init__(self) -> None:
        self.trials = max(5, int(self.trials))

    def to_json(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_json(data: dict) -> VerifyOptions:
        return VerifyOptions(**{k: v for k, v in data.items() if k in VerifyOptions.__dataclass_fields__})
