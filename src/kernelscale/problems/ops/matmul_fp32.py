"""Square float32 matrix product C = A @ B (4096^3), checked at fp32 tolerance (no TF32)."""

import torch
import torch.nn as nn

M = 4096
N = 4096
K = 4096

CPU_SIZES = {"M": 64, "N": 48, "K": 80}
KERNELSCALE = {"flops": 137_438_953_472}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # a: (M, K), b: (K, N) -> (M, N)
        return torch.matmul(a, b)


def get_inputs():
    # B scaled by 1/sqrt(K) so outputs are O(1): the 1e-4 absolute tolerance then separates an
    # exact fp32 kernel (errors ~1e-5 even at 3x input scale) from a TF32 one (~1e-3). With unit
    # B, outputs ~64 and fp32 summation-order noise alone (~1e-3 at 3x scale) would fail a
    # correct kernel on near-zero outputs.
    return [torch.randn(M, K), torch.randn(K, N) * K**-0.5]


def get_init_inputs():
    return []
