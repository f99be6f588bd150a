"""exp(x) * 2 + y: a small fp32 elementwise problem the hostile candidates attack."""

import torch
import torch.nn as nn

M = 2048
N = 4096
CPU_SIZES = {"M": 16, "N": 64}


class Model(nn.Module):
    def forward(self, x, y):
        return torch.exp(x) * 2.0 + y


def get_inputs():
    return [torch.randn(M, N), torch.randn(M, N)]


def get_init_inputs():
    return []
