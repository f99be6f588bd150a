"""A bool output: where x exceeds y and is positive (a comparison mask)."""

import torch
import torch.nn as nn

N = 1 << 20
CPU_SIZES = {"N": 1000}


class Model(nn.Module):
    def forward(self, x, y):
        return (x > y) & (x > 0)


def get_inputs():
    return [torch.randn(N), torch.randn(N)]


def get_init_inputs():
    return []
