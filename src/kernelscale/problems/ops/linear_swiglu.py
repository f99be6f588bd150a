"""SwiGLU feed-forward gate in bfloat16: silu(x @ Wg.T) * (x @ Wu.T), 4096x4096 -> 8192."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 4096
IN_FEATURES = 4096
HIDDEN = 8192

CPU_SIZES = {"BATCH": 40, "IN_FEATURES": 64, "HIDDEN": 48}
KERNELSCALE = {"dtype": "bfloat16", "flops": 549_755_813_888}


class Model(nn.Module):
    def __init__(self, in_features: int, hidden: int):
        super().__init__()
        self.gate = nn.Linear(in_features, hidden, bias=False, dtype=torch.bfloat16)
        self.up = nn.Linear(in_features, hidden, bias=False, dtype=torch.bfloat16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (BATCH, IN_FEATURES) -> (BATCH, HIDDEN)
        return F.silu(self.gate(x)) * self.up(x)


def get_inputs():
    return [torch.randn(BATCH, IN_FEATURES, dtype=torch.bfloat16)]


def get_init_inputs():
    return [IN_FEATURES, HIDDEN]
