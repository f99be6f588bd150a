"""A one-element Triton kernel a runner started ahead compiles and runs before any candidate code
exists: the compiler's one-time set-up in a process (its MLIR and LLVM contexts, the backend's
query of ptxas, the launcher's build tools) is then paid while nothing is timed, not in the
candidate's first call. Its binary lands in the attempt's own fresh cache, like the driver
helpers."""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _add_one(x_ptr):
    tl.store(x_ptr, tl.load(x_ptr) + 1.0)


def compile_and_run(device: str = "cuda") -> float:
    x = torch.zeros(1, device=device)
    _add_one[(1,)](x)
    return float(x.item())  # waits for the kernel
