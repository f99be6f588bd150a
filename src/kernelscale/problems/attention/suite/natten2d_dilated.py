"""2D neighborhood attention with dilation 2: a 13x13 window on the query's dilated sub-grid."""

import math

from kernelscale.problems.attention.suite.natten2d import KERNEL, natten_mask

DILATION = 2


def make(B, Hq, Hkv, Sq, Skv, D, device):
    width = math.isqrt(Sq)
    if width * width != Sq or Sq != Skv:
        raise ValueError(f"natten2d needs Sq == Skv == W*W, got Sq={Sq}, Skv={Skv}")
    return None, natten_mask(width, KERNEL, DILATION)


if __name__ == "__main__":
    from kernelscale.cli.variant_check import main

    main(__file__)
