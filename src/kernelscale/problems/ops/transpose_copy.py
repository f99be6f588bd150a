"""Materialised transpose (x.T made contiguous) of a 8192x8192 float32 matrix."""

import torch
import torch.nn as nn

ROWS = 8192
COLS = 8192

CPU_SIZES = {"ROWS": 70, "COLS": 90}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (ROWS, COLS) -> (COLS, ROWS), contiguous
        return x.t().contiguous()


def get_inputs():
    return [torch.randn(ROWS, COLS)]


def get_init_inputs():
    return []
