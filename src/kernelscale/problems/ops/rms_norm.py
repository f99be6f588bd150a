"""RMS normalisation over the last dimension (8192x8192 float32) with a learned scale."""

import torch
import torch.nn as nn

BATCH = 8192
DIM = 8192
EPS = 1e-6

CPU_SIZES = {"BATCH": 29, "DIM": 144}


class Model(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(1.0 + 0.1 * torch.randn(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (BATCH, DIM) -> (BATCH, DIM)
        rms = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return x * rms * self.weight


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return [DIM, EPS]
