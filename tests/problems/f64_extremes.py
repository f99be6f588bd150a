"""±1e308 by the sign of x, in float64: outputs at the edge of the double range, where an
error between two finite values can overflow to infinity."""

import torch
import torch.nn as nn

N = 1 << 16
CPU_SIZES = {"N": 256}


class Model(nn.Module):
    def forward(self, x):
        big = torch.full_like(x, 1e308)
        return torch.where(x < 0, -big, big)


def get_inputs():
    return [torch.randn(N, dtype=torch.float64)]


def get_init_inputs():
    return []
