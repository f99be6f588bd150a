"""Logit soft-capping, cap * tanh(score / cap) with cap 30, under a causal mask."""

import torch

SOFTCAP = 30.0


def score_mod(score, b, h, q_idx, kv_idx):
    return SOFTCAP * torch.tanh(score / SOFTCAP)


def mask_mod(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


if __name__ == "__main__":
    from kernelscale.problems.attention.selfcheck import main

    main(__file__)
