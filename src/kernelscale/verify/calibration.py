"""What each step of a call costs when no candidate code runs, measured with a trusted runner.

The oracle's window around a candidate call (`go` → `done`) holds the pipe round trip besides
the kernel; the staging step (`stage` → inputs in the runner's buffers) copies the input set out
of the input slab; the oracle's L2 flush and its probe kernel after `done` take the GPU for a
moment; the shipping step (`ship` → outputs written) holds the advisory checks and the copy of
the outputs into the output slab; the key and commit steps unmask the inputs and digest the
outputs (masking.py). The runner's own figure for that call, which runs no kernel, is the
harness's cost around every call (the recorder, the module call, the synchronize), which the
candidate's figure is reported without. Each is measured once per problem
with a runner in the same sandbox whose model is ours (it only fills outputs of the reference's
shapes and dtypes) on inputs of the problem's sizes, so the candidate cannot inflate them:
medians over a few calls, with their spread, which sets how far a candidate's figures may
stray before they are a finding.
"""

from __future__ import annotations

import socket
import statistics
import time
from dataclasses import dataclass, field

import torch

from kernelscale.verify import host_quiet
from kernelscale.verify.candidate import CandidateProcess, attempt_dir
from kernelscale.verify.cleanup import remove_tree
from kernelscale.verify.inputs import make_inputs, outputs_as_list
from kernelscale.verify.options import VerifyOptions
from kernelscale.verify.replies import AttemptFailed
from kernelscale.verify.timing import Stopwatch, rounded
from kernelscale.verify.verdict import verifier_error

WARM_CALLS, MEASURED_CALLS = 3, 11


@dataclass(frozen=True)
class StepCost:
    median_ms: float
    spread_ms: float  # robust: 1.4826 × median absolute deviation

    @classmethod
    def of(cls, values: list[float]) -> StepCost:
        return cls(statistics.median(values), robust_spread(values)) if values else cls(0.0, 0.0)


@dataclass
class Calibration:
    handshake: StepCost = StepCost(0.0, 0.0)  # window − own time of a trusted call
    ship: StepCost = StepCost(0.0, 0.0)  # outputs of the same sizes written
    stage: StepCost = StepCost(0.0, 0.0)  # inputs of the same sizes staged
    flush: StepCost = StepCost(0.0, 0.0)  # the oracle's L2 flush while the trusted runner idles
    probe: StepCost = StepCost(0.0, 0.0)  # the oracle's probe kernel right after a trusted `done`
    key: StepCost = StepCost(0.0, 0.0)  # inputs of the same sizes unmasked
    commit: StepCost = StepCost(0.0, 0.0)  # a digest of outputs of the same sizes
    harness: StepCost = StepCost(0.0, 0.0)  # the runner's own figure for a call that runs no kernel

    host: str = ""  # the machine it was measured on: host copies and pipes set these costs
    stored: bool = False  # reused from an earlier run's measurement, not measured in this one
    # Seconds per part of measuring it (never stored): the verifier's own cost, in a verdict.
    measured_s: dict = field(default_factory=dict)

    @property
    def handshake_ms(self) -> float:
        return self.handshake.median_ms

    @property
    def quiet(self) -> bool:
        """Measured with no candidate alive on the host (host_quiet.py): fit to be stored."""
        return not self.measured_s.get("host_quiet_gave_up")

    def to_json(self) -> dict:
        """For the store: a later run on this host and device reuses it instead of paying a
        trusted runner's start and calls again (seconds before its first verdict)."""
        steps = {name: [cost.median_ms, cost.spread_ms] for name, cost in self._steps().items()}
        return {"host": self.host, "protocol": PROTOCOL, "steps": steps}

    @classmethod
    def from_json(cls, data: dict) -> Calibration:
        steps = {name: StepCost(float(pair[0]), float(pair[1])) for name, pair in data["steps"].items()}
        return cls(**steps, host=str(data["host"]), stored=True)

    def _steps(self) -> dict[str, StepCost]:
        return {name: getattr(self, name) for name in STEP_NAMES}


STEP_NAMES = ("handshake", "ship", "stage", "flush", "probe", "key", "commit", "harness")
# What the steps do, in revisions: a stored figure binds a candidate's step only while both run
# the same work. Raise it whenever a step's work changes (2: the digest's per-run weights, which
# made the commit step dearer: a bound stored before it would fail honest candidates' commits).
PROTOCOL = 2


def robust_spread(values: list[float]) -> float:
    middle = statistics.median(values)
    return 1.4826 * statistics.median(abs(v - middle) for v in values)


NULL_MODEL = '''
import torch

SPECS = {specs!r}


class ModelNew(torch.nn.Module):
    """Trusted: outputs of the reference's shapes and dtypes, allocated, no kernel run: its own
    figure is what the runner's timed region costs around any call (the harness), nothing more."""

    def forward(self, *inputs):
        device = next(x.device for x in inputs if isinstance(x, torch.Tensor))
        outs = [torch.empty(shape, dtype=getattr(torch, dtype), device=device) for shape, dtype in SPECS]
        return outs[0] if len(outs) == 1 else tuple(outs)
'''


def calibrate(oracle, loaded, options: VerifyOptions) -> Calibration:
    """Once per problem in an oracle: a stored calibration of this host (an earlier run's, on
    this problem and device, passed in by the search) or a fresh measurement. Stored figures
    come only from a trusted runner with no candidate alive, so reusing them gives a candidate
    nothing it could have shaped; another host's are never used."""
    if loaded.calibration is None:
        loaded.calibration = _stored_here(options) or _measure(oracle, loaded, options)
    return loaded.calibration


def needs_measuring(loaded, options: VerifyOptions) -> bool:
    """Will `calibrate` start a trusted runner (no calibration yet here, none stored)?"""
    return loaded.calibration is None and _stored_here(options) is None


def _stored_here(options: VerifyOptions) -> Calibration | None:
    """This host's stored calibration of this protocol; None where there is none or it is
    malformed."""
    host = this_host()
    for stored in options.known_calibrations or []:
        if isinstance(stored, dict) and stored.get("host") == host and stored.get("protocol") == PROTOCOL:
            try:
                return Calibration.from_json(stored)
            except (KeyError, TypeError, ValueError, IndexError, AttributeError):
                return None
    return None


def this_host() -> str:
    return socket.gethostname()


def _measure(oracle, loaded, options: VerifyOptions) -> Calibration:
    parts: dict[str, float] = {}
    with host_quiet.quiet(parts):  # no candidate alive on the host while the figures are taken
        return _measure_quietly(oracle, loaded, options, parts)


def _measure_quietly(oracle, loaded, options: VerifyOptions, parts: dict) -> Calibration:
    watch = Stopwatch(parts)
    inputs = make_inputs(loaded.module, loaded.timing_seed, 1.0, oracle.device)
    with torch.no_grad():
        outs = outputs_as_list(loaded.timing_model(*inputs))
    specs = [
        (tuple(o.shape), str(o.dtype).removeprefix("torch.")) for o in outs if isinstance(o, torch.Tensor)
    ]
    del outs
    watch.lap("reference")
    # A runner started ahead (spare.py) is the same trusted runner, its imports done already.
    spare = oracle.spares.take(loaded, options.memory_limit_gb) if oracle.spares else None
    process = spare or CandidateProcess(oracle, loaded, attempt_dir(oracle), options.memory_limit_gb)
    workdir = process.workdir
    watch.lap("runner")
    try:
        deadline = time.monotonic() + options.timeout_s
        init = {"init_file": str(process.exchange.write("init", []))}
        try:
            process.start(NULL_MODEL.format(specs=specs), init, 0, deadline, untrusted=False)
            watch.lap("start")
            for index in range(WARM_CALLS + MEASURED_CALLS):
                process.call(inputs, deadline)
                if index == 0:
                    watch.lap("first_call")
            watch.lap("calls")
        except AttemptFailed as exc:
            # No candidate code has run in this runner: whatever it failed is the verifier's
            # own doing (before, a bool output made it "rejected: late_outputs" for every
            # candidate of the problem, honest ones included).
            raise AttemptFailed(
                verifier_error(f"the trusted calibration runner failed: {exc.verdict.headline()}")
            ) from None
        calls = process.clock[WARM_CALLS:]
        return Calibration(
            host=this_host(),
            handshake=StepCost.of([max(0.0, c.window_ms - c.own_ms) for c in calls]),
            ship=StepCost.of([c.ship_ms for c in calls]),
            stage=StepCost.of([c.stage_ms for c in calls]),
            flush=StepCost.of([c.flush_ms for c in calls]),
            probe=StepCost.of([c.probe_ms for c in calls]),
            key=StepCost.of([c.key_ms for c in calls]),
            commit=StepCost.of([c.commit_ms for c in calls]),
            harness=StepCost.of([c.own_ms for c in calls]),
            measured_s=rounded(parts) | {"exchange": rounded(process.exchange_s)},
        )
    finally:
        process.kill()
        remove_tree(workdir)
