"""2D neighborhood attention (NATTEN) on a square image of S = W*W tokens (64x64 at S=4096).

Each query attends to a kernel x kernel window (13) of keys around it in the image, the window
clamped to stay inside the image; with dilation d, only keys in the query's residue class
(x % d, y % d) count and the window is taken on that dilated sub-grid.
"""

import math

import torch

KERNEL = 13
DILATION = 1


def natten_mask(width, kernel, dilation):
    half = kernel // 2

    def axis_ok(q, kv):
        # sub-grid coordinate and size of the query's residue class along one axis
        r = q % dilation
        n = (width - r + dilation - 1) // dilation
        center = torch.minimum(torch.maximum(q // dilation, torch.full_like(q, half)), n - 1 - half)
        return (r == kv % dilation) & ((center - kv // dilation).abs() <= half)

    def mask_mod(b, h, q_idx, kv_idx):
        return axis_ok(q_idx // width, kv_idx // width) & axis_ok(q_idx % width, kv_idx % width)

    return mask_mod


def make(B, Hq, Hkv, Sq, Skv, D, device):
    width = math.isqrt(Sq)
    if width * width != Sq or Sq != Skv:
        raise ValueError(f"natten2d needs Sq == Skv == W*W, got Sq={Sq}, Skv={Skv}")
    return None, natten_mask(width, KERNEL, DILATION)


if __name__ == "__main__":
    from kernelscale.cli.variant_check import main

    main(__file__)
