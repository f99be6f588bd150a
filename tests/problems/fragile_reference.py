"""A reference that raises or kills its own process when a flag file says so: oracle failures under test."""

import os

import torch
import torch.nn as nn

N = 1024
CPU_SIZES = {"N": 64}
FLAG_PATH = "/nonexistent/CRASH_ORACLE"  # tests point this at a file they create


class Model(nn.Module):
    def forward(self, x, y):
        if os.path.exists(FLAG_PATH):
            with open(FLAG_PATH) as flag:
                if flag.read() == "raise":
                    raise ValueError("the reference failed")
            os.abort()
        return torch.exp(x) * 2.0 + y


def get_inputs():
    return [torch.randn(4, N), torch.randn(4, N)]


def get_init_inputs():
    return []
