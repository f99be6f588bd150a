"""A reference that kills its own process when a flag file exists: the oracle crash under test."""
import os

import torch
import torch.nn as nn

N = 1024
CPU_SIZES = {"N": 64}
FLAG_PATH = "/nonexistent/CRASH_ORACLE"  # tests point this at a file they create


class Model(nn.Module):
    def forward(self, x, y):
        if os.path.exists(FLAG_PATH):
            os.abort()
        return torch.exp(x) * 2.0 + y


def get_inputs():
    return [torch.randn(4, N), torch.randn(4, N)]


def get_init_inputs():
    return []
