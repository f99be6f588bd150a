"""Residual add followed by layer normalisation: layer_norm(x + residual), 8192x8192 float32."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 8192
DIM = 8192
EPS = 1e-5

CPU_SIZES = {"BATCH": 27, "DIM": 136}
# rows whose mean is large against their spread: a one-pass variance (E[x^2] - E[x]^2)
# cancels there and passed every other trial
KERNELSCALE = {"edge_shifts": ["negative", "positive", "small", "large", "offset"]}


class Model(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(1.0 + 0.1 * torch.randn(dim))
        self.bias = nn.Parameter(0.1 * torch.randn(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        # x, residual: (BATCH, DIM) -> (BATCH, DIM)
        h = x + residual
        return F.layer_norm(h, (h.shape[-1],), self.weight, self.bias, self.eps)


def get_inputs():
    return [torch.randn(BATCH, DIM), torch.randn(BATCH, DIM)]


def get_init_inputs():
    return [DIM, EPS]
