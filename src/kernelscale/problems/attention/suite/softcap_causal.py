"""Logit soft-capping, cap * tanh(score / cap) with cap 30, under a bottom-right causal mask."""

import torch

SOFTCAP = 30.0


def make(B, Hq, Hkv, Sq, Skv, D, device):
    offset = Skv - Sq  # query row i sits at key position i + offset

    def score_mod(score, b, h, q_idx, kv_idx):
        return SOFTCAP * torch.tanh(score / SOFTCAP)

    def mask_mod(b, h, q_idx, kv_idx):
        return q_idx + offset >= kv_idx

    return score_mod, mask_mod


if __name__ == "__main__":
    from kernelscale.cli.variant_check import main

    main(__file__)
