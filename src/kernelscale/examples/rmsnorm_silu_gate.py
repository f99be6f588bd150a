"""Gated RMS norm, rms_norm(x) * w * silu(gate), as one row kernel (solves ops/rmsnorm_silu_gate)."""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def rmsnorm_gate_kernel(
    x_ptr, g_ptr, w_ptr, y_ptr, n_cols, stride_x, stride_g, stride_y, eps, BLOCK: tl.constexpr
):
    # One program per row: x and gate read once, y written once (the reference makes five
    # full-size intermediates).
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * stride_x + cols, mask=mask, other=0.0).to(tl.float32)
    rstd = 1.0 / tl.sqrt(tl.sum(x * x, axis=0) / n_cols + eps)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    g = tl.load(g_ptr + row * stride_g + cols, mask=mask, other=0.0).to(tl.float32)
    y = x * rstd * w * (g * tl.sigmoid(g))
    tl.store(y_ptr + row * stride_y + cols, y.to(y_ptr.dtype.element_ty), mask=mask)


def rmsnorm_gate(x: torch.Tensor, gate: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    # x, gate: (rows, cols), weight: (cols,) -> (rows, cols)
    x = x.contiguous()
    gate = gate.contiguous()
    rows, cols = x.shape
    y = torch.empty_like(x)
    block = triton.next_power_of_2(cols)
    num_warps = min(max(block // 512, 4), 16)
    rmsnorm_gate_kernel[(rows,)](
        x,
        gate,
        weight,
        y,
        cols,
        x.stride(0),
        gate.stride(0),
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
        self.eps = eps

    def forward(self, x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        return rmsnorm_gate(x, gate, self.weight, self.eps)
