"""Tall-skinny float16 matrix product C = A @ B with A 32768x1024 and B 1024x1024."""

import torch
import torch.nn as nn

M = 32768
N = 1024
K = 1024

CPU_SIZES = {"M": 256, "N": 32, "K": 64}
KERNELSCALE = {"dtype": "float16", "flops": 68_719_476_736}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # a: (M, K), b: (K, N) -> (M, N), fp16
        return torch.matmul(a, b)


def get_inputs():
    return [torch.randn(M, K, dtype=torch.float16), torch.randn(K, N, dtype=torch.float16)]


def get_init_inputs():
    return []
