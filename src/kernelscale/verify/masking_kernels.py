"""The Triton kernels behind masking.py on a GPU: one pass each over a tensor's bits.

Kept apart so that the oracle on a CPU (which has no Triton backend and no interpreter) never
imports Triton for masking; masking.py takes its torch path there.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

XOR_BLOCK = 2048
DIGEST_BLOCK = 4096


@triton.jit
def _xor_pad_kernel(ptr, n, key, BLOCK: tl.constexpr, BYTES: tl.constexpr, ONE_BIT: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inside = offs < n
    x = tl.load(ptr + offs, mask=inside)
    # Philox keyed by the element's index: the same pad whatever the grid or the process.
    r0, r1, _, _ = tl.randint4x(key, offs.to(tl.uint32))  # 32-bit counters: any Triton version
    if BYTES == 8:
        pad = ((r0.to(tl.uint64) << 32) | r1.to(tl.uint64)).to(tl.int64, bitcast=True)
    elif BYTES == 4:
        pad = r0.to(tl.int32, bitcast=True)
    elif BYTES == 2:
        pad = r0.to(tl.uint16).to(tl.int16, bitcast=True)
    else:
        pad = r0.to(tl.uint8).to(tl.int8, bitcast=True)
    if ONE_BIT:
        pad = pad & 1
    tl.store(ptr + offs, x ^ pad, mask=inside)


@triton.jit
def _digest_kernel(
    ptr,
    weights_ptr,
    runs_ptr,
    partial_ptr,
    n,
    blocks,
    runs,
    BLOCK: tl.constexpr,
    WEIGHTS: tl.constexpr,
    LANES: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inside = offs < n
    bits = tl.load(ptr + offs, mask=inside, other=0).to(tl.int64)  # sign-extended, as torch does
    index = offs & (WEIGHTS - 1)
    run = offs // WEIGHTS
    for lane in tl.static_range(LANES):  # every lane from the one read of the block
        # masking.lane_weights: the cycled table XOR the word of the element's run
        weights = tl.load(weights_ptr + lane * WEIGHTS + index) ^ tl.load(
            runs_ptr + lane * runs + run, mask=inside, other=0
        )
        tl.store(partial_ptr + lane * blocks + pid, tl.sum(bits * weights, axis=0))  # wraps mod 2**64


def xor_pad(flat: torch.Tensor, key: int, one_bit: bool) -> None:
    """In place over a contiguous 1-D integer view."""
    n = flat.numel()
    if n:
        grid = (triton.cdiv(n, XOR_BLOCK),)
        _xor_pad_kernel[grid](flat, n, key, BLOCK=XOR_BLOCK, BYTES=flat.element_size(), ONE_BIT=one_bit)


def digest(flat: torch.Tensor, weights: torch.Tensor, runs: torch.Tensor, count: int) -> list[int]:
    """One sum per lane, modulo 2**64; element i weighs weights[lane, i % count] XOR
    runs[lane, i // count] (masking.lane_weights)."""
    n, lanes = flat.numel(), weights.shape[0]
    blocks = triton.cdiv(n, DIGEST_BLOCK)
    partial = torch.empty((lanes, blocks), dtype=torch.int64, device=flat.device)
    _digest_kernel[(blocks,)](
        flat,
        weights,
        runs.contiguous(),
        partial,
        n,
        blocks,
        runs.shape[1],
        BLOCK=DIGEST_BLOCK,
        WEIGHTS=count,
        LANES=lanes,
    )
    return [int(v) for v in partial.sum(dim=1)]
