"""Gated RMS normalisation (SwiGLU-style): rms_norm(x) * weight * silu(gate), 8192x8192 float32."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 8192
DIM = 8192
EPS = 1e-6

CPU_SIZES = {"BATCH": 25, "DIM": 120}


class Model(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(1.0 + 0.1 * torch.randn(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        # x, gate: (BATCH, DIM) -> (BATCH, DIM)
        normed = x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight
        return normed * F.silu(gate)


def get_inputs():
    return [torch.randn(BATCH, DIM), torch.randn(BATCH, DIM)]


def get_init_inputs():
    return [DIM, EPS]
