"""Causal attention: query i sees keys 0..i (top-left aligned, as SDPA's is_causal)."""


def mask_mod(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


if __name__ == "__main__":
    from kernelscale.problems.attention.selfcheck import main

    main(__file__)
