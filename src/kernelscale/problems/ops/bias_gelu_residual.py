"""Bias add + exact GELU + residual add: gelu(x + bias) + residual, 8192x8192 float32."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 8192
DIM = 8192

CPU_SIZES = {"BATCH": 48, "DIM": 80}


class Model(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.bias = nn.Parameter(0.1 * torch.randn(dim))

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        # x, residual: (BATCH, DIM) -> (BATCH, DIM)
        return F.gelu(x + self.bias) + residual


def get_inputs():
    return [torch.randn(BATCH, DIM), torch.randn(BATCH, DIM)]


def get_init_inputs():
    return [DIM]
