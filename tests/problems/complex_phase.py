"""exp(i·x) of a bf16 vector, as complex64: a complex output of single precision beside a
16-bit input (the input's 1e-2 must not become the output's tolerance)."""

import torch
import torch.nn as nn

N = 1 << 20
CPU_SIZES = {"N": 1024}


class Model(nn.Module):
    def forward(self, x):
        angle = x.float()
        return torch.polar(torch.ones_like(angle), angle)


def get_inputs():
    return [torch.randn(N, dtype=torch.bfloat16)]


def get_init_inputs():
    return []
