"""Grouped-query causal attention: 16 query heads share 4 key/value heads (groups of 4).

Bottom-right aligned like `causal`: query row i sits at key position i + (Skv - Sq).
"""

SHAPE = {"Hq": 16, "Hkv": 4}


def make(B, Hq, Hkv, Sq, Skv, D, device):
    offset = Skv - Sq

    def mask_mod(b, h, q_idx, kv_idx):
        return q_idx + offset >= kv_idx

    return None, mask_mod


if __name__ == "__main__":
    from kernelscale.cli.variant_check import main

    main(__file__)
