"""Two outputs of different precision: a bf16 copy scaled by 2, and exp(x) in fp32."""

import torch
import torch.nn as nn

N = 1 << 20
CPU_SIZES = {"N": 1024}


class Model(nn.Module):
    def forward(self, x):
        return (x * 2.0).to(torch.bfloat16), torch.exp(x)


def get_inputs():
    return [torch.randn(N)]


def get_init_inputs():
    return []
