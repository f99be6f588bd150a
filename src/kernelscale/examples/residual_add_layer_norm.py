"""Residual add fused into a one-pass row layer norm (solves ops/residual_add_layer_norm)."""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def add_layer_norm_kernel(
    x_ptr, r_ptr, w_ptr, b_ptr, y_ptr, n_cols, stride_x, stride_r, stride_y, eps, BLOCK: tl.constexpr
):
    # One program per row, whole row in registers: reads x and r once, writes y once
    # (the unfused reference writes and re-reads the sum).
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * stride_x + cols, mask=mask, other=0.0).to(tl.float32)
    r = tl.load(r_ptr + row * stride_r + cols, mask=mask, other=0.0).to(tl.float32)
    h = x + r
    mean = tl.sum(h, axis=0) / n_cols
    diff = tl.where(mask, h - mean, 0.0)
    var = tl.sum(diff * diff, axis=0) / n_cols
    rstd = 1.0 / tl.sqrt(var + eps)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    b = tl.load(b_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    y = diff * rstd * w + b
    tl.store(y_ptr + row * stride_y + cols, y.to(y_ptr.dtype.element_ty), mask=mask)


def add_layer_norm(x: torch.Tensor, residual: torch.Tensor, weight, bias, eps: float) -> torch.Tensor:
    # x, residual: (rows, cols), weight/bias: (cols,) -> layer_norm(x + residual): (rows, cols)
    x = x.contiguous()
    residual = residual.contiguous()
    rows, cols = x.shape
    y = torch.empty_like(x)
    block = triton.next_power_of_2(cols)
    # Two rows' worth of registers (x and r) per thread: ~16 values each at 8 warps for 8192.
    num_warps = min(max(block // 512, 4), 16)
    add_layer_norm_kernel[(rows,)](
        x,
        residual,
        weight,
        bias,
        y,
        cols,
        x.stride(0),
        residual.stride(0),
        y.stride(0),
        eps,
        BLOCK=block,
        num_warps=num_warps,
    )
    return y


class ModelNew(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(1.0 + 0.1 * torch.randn(dim))
        self.bias = nn.Parameter(0.1 * torch.randn(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return add_layer_norm(x, residual, self.weight, self.bias, self.eps)
