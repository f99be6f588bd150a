"""ALiBi with a causal mask: slope 2^(-8(h+1)/H) times (kv_pos - q_pos), keys up to the query.

Bottom-right aligned: query row i sits at key position i + (Skv - Sq).
"""

import torch


def make(B, Hq, Hkv, Sq, Skv, D, device):
    slopes = torch.exp2(-8.0 * torch.arange(1, Hq + 1, dtype=torch.float32) / Hq).to(device)
    offset = Skv - Sq

    def score_mod(score, b, h, q_idx, kv_idx):
        return score + slopes[h] * (kv_idx - (q_idx + offset))

    def mask_mod(b, h, q_idx, kv_idx):
        return q_idx + offset >= kv_idx

    return score_mod, mask_mod


if __name__ == "__main__":
    from kernelscale.cli.variant_check import main

    main(__file__)
