"""Logit soft-capping (Gemma 2, Grok): cap * tanh(score / cap) with cap 30."""

import torch

SOFTCAP = 30.0


def score_mod(score, b, h, q_idx, kv_idx):
    return SOFTCAP * torch.tanh(score / SOFTCAP)


if __name__ == "__main__":
    from kernelscale.cli.variant_check import main

    main(__file__)
