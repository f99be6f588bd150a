"""Settings of one verification (the protocol's knobs; the defaults are its minimums)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class VerifyOptions:
    trials: int = 5  # correctness trials before timing (at least 5 are always run)
    input_scale: float = 3.0  # the rescaled-input trial multiplies floating inputs by this
    timeout_s: float = 300.0  # wall clock for the whole attempt in the candidate's process
    # Timed calls stop at `max_calls`, after `max_timing_s`, or once at least 2 x `round_calls`
    # pin the median down: its distribution-free 95% interval within `target_spread` of it. Every
    # timed call moves its inputs and outputs through host memory and is checked against the
    # reference, so each costs the verifier ~100-200 ms on an H200 host for a problem of a few
    # hundred MB: 5 s of timed calls (25-60 calls) keep an attempt's own cost under 10 s.
    max_calls: int = 60
    target_spread: float = 0.01
    round_calls: int = 10  # timed calls before the first stop test; baselines time in blocks of these
    max_timing_s: float = 5.0
    # interpreted timing on the CPU: a few calls, not a performance number; three, so that the
    # timer rule over the timed calls alone takes a middle value one stalled call cannot move
    cpu_calls: int = 3
    suspect_speedup: float = 10.0
    screen: bool = True  # only tests turn this off, to prove the sandbox stands without it
    memory_limit_gb: float | None = None  # address-space cap for the candidate on the CPU
    # Baseline medians (name -> ms) already measured for this problem on this device and these
    # versions by an earlier run: the oracle neither builds (compiles) nor times them again.
    known_baselines: dict[str, float] | None = None
    # A trusted runner's step costs measured by earlier runs for this problem and device, one per
    # host (Calibration.to_json: the host, each step's median and spread). An oracle uses only
    # its own host's and measures afresh where there is none.
    known_calibrations: list[dict] | None = None
    # Wait for every baseline still compiling (in its own process) before the timed calls, so
    # that this verdict measures them all: the search asks it of a run's last attempts. Other
    # verdicts do not wait; a later attempt times what was still building.
    wait_for_builds: bool = False

    def __post_init__(self) -> None:
        self.trials = max(5, int(self.trials))

    def to_json(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_json(data: dict) -> VerifyOptions:
        return VerifyOptions(**{k: v for k, v in data.items() if k in VerifyOptions.__dataclass_fields__})
