"""exp(x) * 2 + y, whose reference runs out of memory while a candidate holds it.

On a GPU a candidate can hold any amount of device memory, so the oracle's next allocation (a
reference call) fails. On the CPU this stands in for that: a candidate "holds" memory by leaving
a file named `hoarding` in its attempt folder, and the reference then raises the error the
allocator would.
"""

import glob

import torch
import torch.nn as nn

N = 1024
CPU_SIZES = {"N": 64}


class Model(nn.Module):
    def forward(self, x, y):
        if glob.glob("/dev/shm/ks-attempt-*/hoarding") + glob.glob(
            "/dev/shm/ks-oracle-*/ks-attempt-*/hoarding"
        ):
            raise torch.OutOfMemoryError("CUDA out of memory (a candidate holds the device's memory)")
        return torch.exp(x) * 2.0 + y


def get_inputs():
    return [torch.randn(4, N), torch.randn(4, N)]


def get_init_inputs():
    return []
