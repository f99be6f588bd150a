"""T5-style bucketed relative bias: a per-head table indexed by a log-bucketed distance kv - q."""

import math

import torch

NUM_BUCKETS = 32
MAX_DISTANCE = 128


def make(B, Hq, Hkv, Sq, Skv, D, device):
    gen = torch.Generator().manual_seed(7)
    table = (torch.randn(NUM_BUCKETS, Hq, generator=gen) * 0.5).to(device)
    half = NUM_BUCKETS // 2
    exact = half // 2
    scale = (half - exact) / math.log(MAX_DISTANCE / exact)

    def score_mod(score, b, h, q_idx, kv_idx):
        rel = kv_idx - q_idx
        side = torch.where(rel > 0, half, 0)
        dist = torch.abs(rel)
        far = exact + (torch.log(dist.float() / exact + 1e-6) * scale).long()
        far = torch.where(far > half - 1, half - 1, far)
        bucket = side + torch.where(dist < exact, dist, far)
        return score + table[bucket, h]

    return score_mod, None


if __name__ == "__main__":
    from kernelscale.cli.variant_check import main

    main(__file__)
