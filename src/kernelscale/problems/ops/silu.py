"""SiLU (x * sigmoid(x)) applied elementwise to a 8192x8192 float32 tensor."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 8192
DIM = 8192

CPU_SIZES = {"BATCH": 64, "DIM": 128}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (BATCH, DIM) -> (BATCH, DIM)
        return F.silu(x)


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return []
