"""Mean over the middle dimension of a 128x1024x512 float32 tensor (a strided reduction)."""

import torch
import torch.nn as nn

BATCH = 128
REDUCE = 1024
COLS = 512

CPU_SIZES = {"BATCH": 3, "REDUCE": 70, "COLS": 200}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (BATCH, REDUCE, COLS) -> (BATCH, COLS)
        return torch.mean(x, dim=1)


def get_inputs():
    return [torch.randn(BATCH, REDUCE, COLS)]


def get_init_inputs():
    return []
