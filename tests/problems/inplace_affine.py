"""A reference that works in place on its input and returns it: x.mul_(2).add_(1)."""

import torch
import torch.nn as nn

N = 1 << 20
CPU_SIZES = {"N": 1000}


class Model(nn.Module):
    def forward(self, x):
        return x.mul_(2.0).add_(1.0)


def get_inputs():
    return [torch.randn(N)]


def get_init_inputs():
    return []
