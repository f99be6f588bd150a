"""Fused float16 projection + scale + row softmax: softmax((x @ W) * scale), 4096x1024 @ 1024x4096."""

import torch
import torch.nn as nn

BATCH = 4096
IN_FEATURES = 1024
OUT_FEATURES = 4096
SCALE = 0.5

CPU_SIZES = {"BATCH": 36, "IN_FEATURES": 48, "OUT_FEATURES": 100}
KERNELSCALE = {"dtype": "float16", "flops": 34_359_738_368}


class Model(nn.Module):
    def __init__(self, in_features: int, out_features: int, scale: float):
        super().__init__()
        # Scaled so the logits are O(1): a softmax over O(30) logits would be nearly one-hot.
        self.weight = nn.Parameter(
            torch.randn(in_features, out_features, dtype=torch.float16) * in_features**-0.5
        )
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (BATCH, IN_FEATURES) @ weight: (IN_FEATURES, OUT_FEATURES) -> (BATCH, OUT_FEATURES)
        return torch.softmax(torch.matmul(x, self.weight) * self.scale, dim=-1)


def get_inputs():
    return [torch.randn(BATCH, IN_FEATURES, dtype=torch.float16)]


def get_init_inputs():
    return [IN_FEATURES, OUT_FEATURES, SCALE]
