"""Mean squared error between two 8192x8192 float32 tensors (fused subtract, square, mean to a scalar)."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 8192
DIM = 8192

CPU_SIZES = {"BATCH": 64, "DIM": 128}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # prediction, target: (BATCH, DIM) -> () scalar
        return F.mse_loss(prediction, target)


def get_inputs():
    return [torch.randn(BATCH, DIM), torch.randn(BATCH, DIM)]


def get_init_inputs():
    return []
