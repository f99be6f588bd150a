"""ALiBi: a per-head linear distance bias, slope 2^(-8(h+1)/H) times (kv_pos - q_pos).

Query row i sits at key position i + (Skv - Sq) (bottom-right, as in decoding); at Sq = Skv the
positions are the indices.
"""

import torch


def make(B, Hq, Hkv, Sq, Skv, D, device):
    slopes = torch.exp2(-8.0 * torch.arange(1, Hq + 1, dtype=torch.float32) / Hq).to(device)
    offset = Skv - Sq

    def score_mod(score, b, h, q_idx, kv_idx):
        return score + slopes[h] * (kv_idx - (q_idx + offset))

    return score_mod, None


if __name__ == "__main__":
    from kernelscale.cli.variant_check import main

    main(__file__)
