"""Maximum over the last dimension of a 16384x4096 float32 matrix (values only)."""

import torch
import torch.nn as nn

BATCH = 16384
DIM = 4096

CPU_SIZES = {"BATCH": 64, "DIM": 128}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (BATCH, DIM) -> (BATCH,)
        return torch.amax(x, dim=-1)


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return []
