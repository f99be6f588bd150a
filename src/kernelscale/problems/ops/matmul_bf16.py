"""Square bfloat16 matrix product C = A @ B (4096^3)."""

import torch
import torch.nn as nn

M = 4096
N = 4096
K = 4096

CPU_SIZES = {"M": 80, "N": 72, "K": 100}
KERNELSCALE = {"dtype": "bfloat16", "flops": 137_438_953_472}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # a: (M, K), b: (K, N) -> (M, N), bf16
        return torch.matmul(a, b)


def get_inputs():
    return [torch.randn(M, K, dtype=torch.bfloat16), torch.randn(K, N, dtype=torch.bfloat16)]


def get_init_inputs():
    return []
