"""Grouped-query causal attention: 16 query heads share 4 key/value heads (groups of 4)."""

SHAPE = {"Hq": 16, "Hkv": 4}


def mask_mod(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


if __name__ == "__main__":
    from kernelscale.problems.attention.selfcheck import main

    main(__file__)
