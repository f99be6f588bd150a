"""Batched bfloat16 matrix product C[b] = A[b] @ B[b] over 32 batches of 1024^3."""

import torch
import torch.nn as nn

BATCH = 32
M = 1024
N = 1024
K = 1024

CPU_SIZES = {"BATCH": 3, "M": 40, "N": 48, "K": 72}
KERNELSCALE = {"dtype": "bfloat16", "flops": 68_719_476_736}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # a: (BATCH, M, K), b: (BATCH, K, N) -> (BATCH, M, N), bf16
        return torch.bmm(a, b)


def get_inputs():
    return [
        torch.randn(BATCH, M, K, dtype=torch.bfloat16),
        torch.randn(BATCH, K, N, dtype=torch.bfloat16),
    ]


def get_init_inputs():
    return []
