"""The cost of one call's handshake and output shipping, measured with a trusted runner.

The oracle's window around a candidate call holds the pipe round trip and the writing of the
outputs besides the kernel. That cost is measured once per problem with a runner in the same
sandbox whose model is ours (it only allocates outputs of the reference's shapes), so the
candidate cannot inflate it: window − own time, median over a few calls.
"""

from __future__ import annotations

import shutil
import statistics
import time

import torch

from kernelscale.verify.candidate import CandidateProcess, attempt_dir
from kernelscale.verify.inputs import make_inputs, outputs_as_list
from kernelscale.verify.options import VerifyOptions

WARM_CALLS, MEASURED_CALLS = 3, 15

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


def handshake_overhead(oracle, loaded, options: VerifyOptions) -> float:
    if loaded.overhead_ms is None:
        loaded.overhead_ms = _measure(oracle, loaded, options)
    return loaded.overhead_ms


def _measure(oracle, loaded, options: VerifyOptions) -> float:
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
        gaps = []
        for i in range(WARM_CALLS + MEASURED_CALLS):
            result = process.call(inputs, deadline)
            if i >= WARM_CALLS:
                gaps.append(max(0.0, result.window_ms - result.own_ms))
        return statistics.median(gaps)
    finally:
        process.kill()
        shutil.rmtree(workdir, ignore_errors=True)
