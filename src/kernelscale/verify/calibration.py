"""The cost of one call's handshake and of shipping its outputs, measured with a trusted runner.

The oracle's window around a candidate call (`go` → `done`) holds the pipe round trip besides
the kernel; the shipping step (`ship` → outputs written) holds the advisory checks and the
writing of the outputs. Both are measured once per problem with a runner in the same sandbox
whose model is ours (it only fills outputs of the reference's shapes and dtypes), so the
candidate cannot inflate them: medians over a few calls, with their spread, which sets how
far a candidate's figures may stray before they are a finding.
"""

from __future__ import annotations

import shutil
import statistics
import time
from dataclasses import dataclass

import torch

from kernelscale.verify.candidate import CandidateProcess, attempt_dir
from kernelscale.verify.inputs import make_inputs, outputs_as_list
from kernelscale.verify.options import VerifyOptions

WARM_CALLS, MEASURED_CALLS = 3, 11


@dataclass
class Calibration:
    handshake_ms: float  # window − own time of a trusted call
    handshake_jitter_ms: float  # its robust spread (1.4826 × median absolute deviation)
    ship_ms: float  # the shipping step of a trusted call with outputs of the same sizes
    ship_jitter_ms: float


def robust_spread(values: list[float]) -> float:
    middle = statistics.median(values)
    return 1.4826 * statistics.median(abs(v - middle) for v in values)


NULL_MODEL = '''
import torch

SPECS = {specs!r}


class ModelNew(torch.nn.Module):
    """Trusted: outputs of the reference's shapes and dtypes, one fill kernel each."""

    def forward(self, *inputs):
        device = next(x.device for x in inputs if isinstance(x, torch.Tensor))
        outs = [torch.ones(shape, dtype=getattr(torch, dtype), device=device) for shape, dtype in SPECS]
        return outs[0] if len(outs) == 1 else tuple(outs)
'''


def calibrate(oracle, loaded, options: VerifyOptions) -> Calibration:
    if loaded.calibration is None:
        loaded.calibration = _measure(oracle, loaded, options)
    return loaded.calibration


def _measure(oracle, loaded, options: VerifyOptions) -> Calibration:
    inputs = make_inputs(loaded.module, loaded.timing_seed, 1.0, oracle.device)
    with torch.no_grad():
        outs = outputs_as_list(loaded.timing_model(*inputs))
    specs = [
        (tuple(o.shape), str(o.dtype).removeprefix("torch.")) for o in outs if isinstance(o, torch.Tensor)
    ]
    del outs
    workdir = attempt_dir(oracle)
    process = CandidateProcess(oracle, loaded, workdir, options.memory_limit_gb)
    try:
        deadline = time.monotonic() + options.timeout_s
        init = {"init_file": str(process.exchange.write("init", []))}
        process.start(NULL_MODEL.format(specs=specs), init, 0, deadline)
        gaps, ships = [], []
        for i in range(WARM_CALLS + MEASURED_CALLS):
            result = process.call(inputs, deadline)
            if i >= WARM_CALLS:
                gaps.append(max(0.0, result.window_ms - result.own_ms))
                ships.append(result.ship_ms)
        return Calibration(
            statistics.median(gaps), robust_spread(gaps), statistics.median(ships), robust_spread(ships)
        )
    finally:
        process.kill()
        shutil.rmtree(workdir, ignore_errors=True)
