"""2D convolution, 3x3, stride 1, padding 1, 64->128 channels on 16x64x128x128 bfloat16 images."""

import torch
import torch.nn as nn

BATCH = 16
IN_CHANNELS = 64
OUT_CHANNELS = 128
HEIGHT = 128
WIDTH = 128
KERNEL = 3

CPU_SIZES = {"BATCH": 2, "IN_CHANNELS": 4, "OUT_CHANNELS": 8, "HEIGHT": 10, "WIDTH": 12}
# bf16, not fp32: cuDNN runs fp32 convolutions in TF32 by default, so an fp32 reference would
# itself miss the fp32 tolerance.
KERNELSCALE = {"dtype": "bfloat16", "flops": 38_654_705_664}


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, dtype=torch.bfloat16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (BATCH, IN_CHANNELS, HEIGHT, WIDTH) -> (BATCH, OUT_CHANNELS, HEIGHT, WIDTH)
        return self.conv(x)


def get_inputs():
    return [torch.randn(BATCH, IN_CHANNELS, HEIGHT, WIDTH, dtype=torch.bfloat16)]


def get_init_inputs():
    return [IN_CHANNELS, OUT_CHANNELS, KERNEL]
