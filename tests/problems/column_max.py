"""The largest element of each column of a float32 matrix: a reduction over the first dimension."""

import torch
import torch.nn as nn

M = 8192
N = 4096
CPU_SIZES = {"M": 48, "N": 64}


class Model(nn.Module):
    def forward(self, x):
        return torch.amax(x, dim=0)


def get_inputs():
    return [torch.randn(M, N)]


def get_init_inputs():
    return []
