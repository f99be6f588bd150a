"""A problem whose reference breaks inside the verifier (not in the loader): every verdict would be
"verifier error (not the candidate's)", so a search must stop after the first."""

import os

import torch
import torch.nn as nn

M = 16
N = 64


class Model(nn.Module):
    def forward(self, x, y):
        if os.environ.get("KERNELSCALE_ORACLE_DIR"):  # set for the verifier's oracle process only
            raise RuntimeError("the reference cannot run here")
        return torch.exp(x) * 2.0 + y


def get_inputs():
    return [torch.randn(M, N), torch.randn(M, N)]


def get_init_inputs():
    return []
