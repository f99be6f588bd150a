"""What a runner started ahead compiles and runs before any candidate code exists: a one-element
Triton kernel (the compiler's one-time set-up in a process: its MLIR and LLVM contexts, the
backend's query of ptxas, the launcher's build tools) and the masking kernels every call uses
(masking.py: the XOR pad that unmasks staged inputs, the digest of the outputs at `commit`) for
the commonest element sizes. Otherwise these compile inside the candidate's first call, in the
attempt's fresh cache. Their binaries land in that cache, like Triton's driver helpers.

A runner that starts from the seed (runner_seed.py) finds all of them compiled already, and so
would skip the compiler's set-up too, leaving it to the candidate's first call: the one-element
kernel is therefore specialised on a salt drawn per runner, which no cache holds."""

from __future__ import annotations

import secrets

import torch
import triton
import triton.language as tl

from kernelscale.verify import masking

WARM_DTYPES = (torch.bfloat16, torch.float32)  # 2- and 4-byte elements: half and single precision


@triton.jit
def _add_one(x_ptr, SALT: tl.constexpr):
    tl.store(x_ptr, tl.load(x_ptr) + (1.0 + SALT * 0.0))


def compile_and_run(device: str = "cuda") -> float:
    x = torch.zeros(1, device=device)
    _add_one[(1,)](x, SALT=secrets.randbits(30))  # compiled here, whatever the seed holds
    key = secrets.randbits(62)  # a key like the oracle's (62 bits): the same specialisation
    for dtype in WARM_DTYPES:
        t = torch.zeros(4096, dtype=dtype, device=device)
        masking.unmask_([t], key)
        masking.digests([t], key)
    return float(x.item())  # waits for the kernels


def warm_oracle_masking(device: str = "cuda") -> None:
    """The oracle's own share: it masks every input set with the XOR pad kernel, which a fresh
    machine's cache does not hold (1.5 s of the first calibration's first call on an H200)."""
    key = secrets.randbits(62)
    for dtype in WARM_DTYPES:
        masking.masked_copy([torch.zeros(4096, dtype=dtype, device=device)], key)
    torch.cuda.synchronize()


def warm_harness(device: str = "cuda") -> None:
    """One recorded, event-timed call of our own, as the runner times a candidate's, so that
    whatever their first use sets up is not in the candidate's first call. It took ~1 s on an
    H200 while the recorder's first op imported Dynamo; since the recorder opts out of that,
    ~1 ms."""
    from kernelscale.verify.op_policy import compute_ops, recording

    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    with torch.no_grad(), recording() as recorder:
        torch.empty(1, device=device).view(1, 1).t()
    end.record()
    end.synchronize()
    start.elapsed_time(end)
    compute_ops(recorder.ops, True)
