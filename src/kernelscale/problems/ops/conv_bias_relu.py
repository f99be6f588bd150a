"""Fused 3x3 convolution + per-channel bias + ReLU in bfloat16 (16x64x128x128 -> 128 channels)."""

import torch
import torch.nn as nn

BATCH = 16
IN_CHANNELS = 64
OUT_CHANNELS = 128
HEIGHT = 128
WIDTH = 128
KERNEL = 3

CPU_SIZES = {"BATCH": 2, "IN_CHANNELS": 3, "OUT_CHANNELS": 8, "HEIGHT": 9, "WIDTH": 11}
KERNELSCALE = {"dtype": "bfloat16", "flops": 38_654_705_664}


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, dtype=torch.bfloat16)
        self.bias = nn.Parameter(0.1 * torch.randn(out_channels, 1, 1, dtype=torch.bfloat16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (BATCH, IN_CHANNELS, HEIGHT, WIDTH) -> (BATCH, OUT_CHANNELS, HEIGHT, WIDTH)
        return torch.relu(self.conv(x) + self.bias)


def get_inputs():
    return [torch.randn(BATCH, IN_CHANNELS, HEIGHT, WIDTH, dtype=torch.bfloat16)]


def get_init_inputs():
    return [IN_CHANNELS, OUT_CHANNELS, KERNEL]
