"""Row L2 normalisation x / max(||x||, eps) of a 8192x8192 float32 matrix."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 8192
DIM = 8192

CPU_SIZES = {"BATCH": 40, "DIM": 96}
# rows of zeros, where the reference's floor max(||x||, eps) gives zeros: without it a kernel
# gives 0 / 0 = NaN, and every other trial's rows have norms far above eps
KERNELSCALE = {"edge_shifts": ["negative", "positive", "small", "large", "zero"]}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (BATCH, DIM) -> (BATCH, DIM)
        return F.normalize(x, p=2.0, dim=-1)


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return []
