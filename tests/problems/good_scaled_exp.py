"""An honest Triton solution of scaled_exp: the control the hostile candidates are measured against."""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def scaled_exp_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    y = tl.load(y_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, tl.exp(x) * 2.0 + y, mask=mask)


def scaled_exp(x, y):
    out = torch.empty_like(x)
    n = x.numel()
    scaled_exp_kernel[(triton.cdiv(n, 1024),)](x, y, out, n, BLOCK=1024)
    return out


class ModelNew(nn.Module):
    def forward(self, x, y):
        return scaled_exp(x.contiguous(), y.contiguous())
