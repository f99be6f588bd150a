"""Prefix LM: a bidirectional prefix (1024 at S=4096, a quarter of shorter sequences), causal after.

Query row i sits at key position i + (Skv - Sq) (bottom-right, as in decoding).
"""


def make(B, Hq, Hkv, Sq, Skv, D, device):
    prefix = min(1024, max(1, Skv // 4))
    offset = Skv - Sq

    def mask_mod(b, h, q_idx, kv_idx):
        return (kv_idx < prefix) | (q_idx + offset >= kv_idx)

    return None, mask_mod


if __name__ == "__main__":
    from kernelscale.cli.variant_check import main

    main(__file__)
