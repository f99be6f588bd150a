"""Elementwise fusion tanh((a + b) * c) over three 4096x8192 float32 tensors."""

import torch
import torch.nn as nn

BATCH = 4096
DIM = 8192

CPU_SIZES = {"BATCH": 50, "DIM": 70}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        # a, b, c: (BATCH, DIM) -> (BATCH, DIM)
        return torch.tanh((a + b) * c)


def get_inputs():
    return [torch.randn(BATCH, DIM), torch.randn(BATCH, DIM), torch.randn(BATCH, DIM)]


def get_init_inputs():
    return []
