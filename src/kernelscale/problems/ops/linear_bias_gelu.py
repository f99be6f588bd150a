"""Fused linear layer + bias + exact GELU in bfloat16: gelu(x @ W.T + b), 8192x4096 -> 4096."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 8192
IN_FEATURES = 4096
OUT_FEATURES = 4096

CPU_SIZES = {"BATCH": 70, "IN_FEATURES": 96, "OUT_FEATURES": 80}
KERNELSCALE = {"dtype": "bfloat16", "flops": 274_877_906_944}


class Model(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, dtype=torch.bfloat16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (BATCH, IN_FEATURES) -> (BATCH, OUT_FEATURES)
        return F.gelu(self.linear(x))


def get_inputs():
    return [torch.randn(BATCH, IN_FEATURES, dtype=torch.bfloat16)]


def get_init_inputs():
    return [IN_FEATURES, OUT_FEATURES]
