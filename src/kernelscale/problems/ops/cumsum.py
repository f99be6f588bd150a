"""Inclusive cumulative sum along the rows of a 16384x4096 float32 matrix of positive values."""

import torch
import torch.nn as nn

BATCH = 16384
DIM = 4096

CPU_SIZES = {"BATCH": 21, "DIM": 300}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (BATCH, DIM) -> (BATCH, DIM)
        return torch.cumsum(x, dim=1)


def get_inputs():
    # Uniform [0, 1): running sums grow monotonically, so fp32 reordering error stays relative
    # (randn would cross zero mid-row, where 1e-4 absolute error is out of reach for long rows).
    return [torch.rand(BATCH, DIM)]


def get_init_inputs():
    return []
