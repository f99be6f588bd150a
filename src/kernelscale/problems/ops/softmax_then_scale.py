"""Row softmax followed by a constant rescale (inference-time dropout, no mask), 4096x16384 float32."""

import torch
import torch.nn as nn

BATCH = 4096
DIM = 16384
KEEP_PROB = 0.9

CPU_SIZES = {"BATCH": 32, "DIM": 200}
# a stable softmax holds at any magnitude: the overflow trial takes logits past exp's range
# (without it, exp(x) / sum(exp(x)) passed every trial: randn x 16 stays under 88.7)
KERNELSCALE = {"edge_shifts": ["negative", "positive", "small", "large", "overflow"]}


class Model(nn.Module):
    def __init__(self, keep_prob: float):
        super().__init__()
        self.keep_prob = keep_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (BATCH, DIM) -> (BATCH, DIM)
        return torch.softmax(x, dim=-1) / self.keep_prob


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return [KEEP_PROB]
