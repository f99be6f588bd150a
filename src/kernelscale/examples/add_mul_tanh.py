"""tanh((a + b) * c) as one elementwise pass: three reads, one write (solves ops/add_mul_tanh)."""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def add_mul_tanh_kernel(a_ptr, b_ptr, c_ptr, y_ptr, n, BLOCK: tl.constexpr):
    # Flat 1D view: each program handles BLOCK contiguous elements (16 per thread at 8 warps,
    # i.e. four 16-byte vector loads per input).
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    a = tl.load(a_ptr + offs, mask=mask).to(tl.float32)
    b = tl.load(b_ptr + offs, mask=mask).to(tl.float32)
    c = tl.load(c_ptr + offs, mask=mask).to(tl.float32)
    z = (a + b) * c
    # tanh from exp(-2|z|) in (0, 1]: never overflows. Near 0, 1 - t cancels (the error is
    # absolute, ~1e-7, so relative error grows as |z| shrinks): there the odd series
    # z - z^3/3 + 2z^5/15 is exact to fp32 (the next term is below 1e-9 relative at |z| < 1/16).
    t = tl.exp(-2.0 * tl.abs(z))
    th = (1.0 - t) / (1.0 + t)
    z2 = z * z
    series = z * (1.0 + z2 * (-1.0 / 3.0 + z2 * (2.0 / 15.0)))
    y = tl.where(tl.abs(z) < 0.0625, series, tl.where(z < 0, -th, th))
    tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


def add_mul_tanh(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    # a, b, c: same shape -> tanh((a + b) * c), same shape
    a = a.contiguous()
    b = b.contiguous()
    c = c.contiguous()
    y = torch.empty_like(a)
    n = a.numel()
    block = 4096
    add_mul_tanh_kernel[(triton.cdiv(n, block),)](a, b, c, y, n, BLOCK=block, num_warps=8)
    return y


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return add_mul_tanh(a, b, c)
